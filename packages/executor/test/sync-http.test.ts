/**
 * File sync against a real server (docs/sync-protocol.md): the SDK's syncFiles and the CLI's
 * `faas sync`, with real sandboxes on the other side.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync, ftruncateSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { buildManifest, type ManifestEntry } from '@faas/protocol/sync';
import { FaaSPlatformClient, isFaasError } from '../../sdk/src/index.ts';
import { syncFiles } from '../../sdk/src/sync/index.ts';
import { startServerProcess } from './fixtures/test-server.ts';
import { useSyncInstance } from './fixtures/sync-instance.ts';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../cli/bin/faas.js');

const ctx = useSyncInstance('faas-sync-test-');
const { temp, sh, sync } = ctx;

/** A tree with everything a sync must handle. */
function makeTree(): string {
  const d = temp();
  mkdirSync(join(d, 'a/b/c'), { recursive: true });
  writeFileSync(join(d, 'a/b/c/deep.txt'), 'deep\n');
  writeFileSync(join(d, 'a/one.txt'), 'one\n');
  writeFileSync(join(d, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(d, 'run.sh'), 0o755);
  writeFileSync(join(d, 'secret'), 'private\n');
  chmodSync(join(d, 'secret'), 0o600);
  mkdirSync(join(d, 'locked'));
  writeFileSync(join(d, 'locked/f'), 'x');
  chmodSync(join(d, 'locked'), 0o750);
  mkdirSync(join(d, 'empty'));
  mkdirSync(join(d, 'ünïcödé'));
  writeFileSync(join(d, 'ünïcödé/日本語 file.txt'), 'こんにちは\n');
  symlinkSync('a/b/c/deep.txt', join(d, 'link-in'));
  symlinkSync('/etc/passwd', join(d, 'link-out'));
  symlinkSync('../../../outside', join(d, 'a/link-up'));
  writeFileSync(join(d, 'dup1.bin'), 'same content');
  writeFileSync(join(d, 'dup2.bin'), 'same content');
  writeFileSync(join(d, 'empty-file'), '');
  writeFileSync(join(d, '.gitignore'), '*.log\nbuild/\n');
  writeFileSync(join(d, 'debug.log'), 'ignored');
  mkdirSync(join(d, 'build'));
  writeFileSync(join(d, 'build/out.o'), 'ignored');
  mkdirSync(join(d, '.git'));
  writeFileSync(join(d, '.git/config'), '[core]\n');
  // Old, distinct mtimes with sub-second precision.
  utimesSync(join(d, 'a/one.txt'), 1_600_000_000.123456, 1_600_000_000.123456);
  utimesSync(join(d, 'ünïcödé/日本語 file.txt'), 1_500_000_000.654321, 1_500_000_000.654321);
  return d;
}

interface RemoteEntry {
  path: string;
  type: string;
  mode: number;
  uid: number;
  size: number;
  mtimeUs: bigint;
  target: string;
}

/** The instance's tree under `dir` as find sees it inside the sandbox. */
async function remoteTree(dir: string): Promise<Map<string, RemoteEntry>> {
  const out = await sh(`cd '${dir}' && find . -mindepth 1 -printf '%P\\t%y\\t%m\\t%U\\t%s\\t%T@\\t%l\\n'`);
  const map = new Map<string, RemoteEntry>();
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [path, y, m, u, s, t, l] = line.split('\t') as [string, string, string, string, string, string, string];
    const [sec, frac = ''] = t.split('.');
    const mtimeUs = BigInt(sec!) * 1_000_000n + BigInt((frac + '000000').slice(0, 6));
    map.set(path, { path, type: y === 'f' ? 'file' : y === 'd' ? 'dir' : y === 'l' ? 'symlink' : y, mode: parseInt(m, 8), uid: Number(u), size: Number(s), mtimeUs, target: l });
  }
  return map;
}

function us(e: ManifestEntry): bigint {
  return BigInt(e.mtimeNs) / 1000n;
}

async function localEntries(dir: string): Promise<ManifestEntry[]> {
  return (await buildManifest(dir)).entries;
}

describe('upload', () => {
  let src: string;
  const remote = '/workspace/tree';

  before(() => {
    src = makeTree();
  });

  test('copies files, modes, mtimes and symlinks; leaves out ignored files and .git', async () => {
    const result = await sync(src, remote);
    assert.equal(result.dryRun, false);
    const local = await localEntries(src);
    assert.equal(result.filesCopied, local.length);
    assert.equal(result.filesUpdated + result.filesDeleted + result.filesSkipped, 0);
    // dup1/dup2 share a content: it travels once.
    const bytes = local.filter((e) => e.type === 'file' && e.path !== 'dup2.bin').reduce((n, e) => n + e.size, 0);
    assert.equal(result.bytesTransferred, bytes);

    const tree = await remoteTree(remote);
    assert.deepEqual([...tree.keys()].sort(), local.map((e) => e.path).sort());
    for (const e of local) {
      const r = tree.get(e.path)!;
      assert.equal(r.type, e.type, e.path);
      assert.equal(r.uid, 1000, `${e.path} is owned by the sandbox user`);
      if (e.type !== 'symlink') assert.equal(r.mode, e.mode, `${e.path} mode`);
      if (e.type === 'file') assert.equal(r.size, e.size, e.path);
      if (e.type === 'symlink') assert.equal(r.target, e.target, e.path);
      assert.equal(r.mtimeUs, us(e), `${e.path} mtime`);
    }
    for (const absent of ['debug.log', 'build', '.git', 'build/out.o']) assert.ok(!tree.has(absent), `${absent} must not be synced`);
    assert.ok(tree.has('empty'));
    assert.ok(tree.has('.gitignore'));
    assert.equal(await sh(`cat '${remote}/ünïcödé/日本語 file.txt'`), 'こんにちは\n');
    assert.equal(await sh(`cat ${remote}/dup2.bin`), 'same content');
    assert.equal(await sh(`stat -c %a ${remote}/locked`), '750\n');
  });

  test('a resync without changes transfers nothing', async () => {
    const result = await sync(src, remote);
    assert.equal(result.bytesTransferred, 0);
    assert.equal(result.filesCopied + result.filesUpdated + result.filesDeleted, 0, JSON.stringify(result.plan.steps.filter((s) => s.action !== 'skip')));
  });

  test('checksum mode catches a same-size, same-mtime edit that the quick check misses', async () => {
    const f = join(src, 'a/one.txt');
    writeFileSync(f, 'ONE\n');
    utimesSync(f, 1_600_000_000.123456, 1_600_000_000.123456);
    const quick = await sync(src, remote);
    assert.equal(quick.filesUpdated, 0);
    assert.equal(await sh(`cat ${remote}/a/one.txt`), 'one\n');
    const checked = await sync(src, remote, { checksumOnly: true });
    assert.equal(checked.filesUpdated, 1);
    assert.equal(checked.bytesTransferred, 4);
    assert.equal(checked.plan.steps.find((s) => s.path === 'a/one.txt')?.reason, 'content');
    assert.equal(await sh(`cat ${remote}/a/one.txt`), 'ONE\n');
  });

  test('a dry run changes nothing and plans what the real run does', async () => {
    writeFileSync(join(src, 'new.txt'), 'new');
    writeFileSync(join(src, 'secret'), 'changed secret');
    await sh(`touch ${remote}/extra && mkdir -p ${remote}/extra-dir/x && touch ${remote}/extra-dir/x/y`);
    const before = await remoteTree(remote);
    const dry = await sync(src, remote, { dryRun: true, deleteUnmatched: true });
    assert.equal(dry.dryRun, true);
    assert.deepEqual(await remoteTree(remote), before);
    assert.equal(dry.filesCopied, 1);
    assert.equal(dry.filesDeleted, 4);
    const real = await sync(src, remote, { deleteUnmatched: true });
    assert.deepEqual(real.plan, dry.plan);
    assert.equal(real.bytesTransferred, dry.bytesTransferred);
    assert.deepEqual([real.filesCopied, real.filesUpdated, real.filesDeleted, real.filesSkipped], [dry.filesCopied, dry.filesUpdated, dry.filesDeleted, dry.filesSkipped]);
  });

  test('delete removes remote extras, but keeps excluded ones', async () => {
    await sh(`touch ${remote}/extra2 ${remote}/kept.log`);
    const r = await sync(src, remote, { deleteUnmatched: true });
    assert.equal(r.filesDeleted, 1);
    const tree = await remoteTree(remote);
    assert.ok(!tree.has('extra2'));
    assert.ok(tree.has('kept.log'), 'an excluded destination entry is protected');
  });

  test('download round-trips the tree', async () => {
    const down = join(temp(), 'not-yet');
    const r = await sync(down, remote, { direction: 'download' });
    assert.equal(r.dryRun, false);
    const a = (await localEntries(src)).map((e) => ({ ...e, mtimeNs: String(us(e)), ...(e.type === 'symlink' ? { mode: 0 } : {}) }));
    const b = (await localEntries(down)).map((e) => ({ ...e, mtimeNs: String(us(e)), ...(e.type === 'symlink' ? { mode: 0 } : {}) }));
    assert.deepEqual(b, a);
    assert.equal(readFileSync(join(down, 'ünïcödé/日本語 file.txt'), 'utf8'), 'こんにちは\n');
    assert.equal(readlinkSync(join(down, 'link-out')), '/etc/passwd');
    assert.ok(existsSync(join(down, 'kept.log')) === false, 'kept.log is gitignored on the source side too');
    const again = await sync(down, remote, { direction: 'download' });
    assert.equal(again.bytesTransferred, 0);
    assert.equal(again.filesCopied + again.filesUpdated + again.filesDeleted, 0, JSON.stringify(again.plan.steps.filter((s) => s.action !== 'skip')));
    // Changes on the instance come down; local extras go with --delete.
    await sh(`echo changed > ${remote}/a/one.txt`);
    writeFileSync(join(down, 'local-extra'), 'x');
    const dry = await sync(down, remote, { direction: 'download', deleteUnmatched: true, dryRun: true });
    assert.equal(readFileSync(join(down, 'a/one.txt'), 'utf8'), 'ONE\n');
    const third = await sync(down, remote, { direction: 'download', deleteUnmatched: true });
    assert.deepEqual(third.plan, dry.plan);
    assert.equal(third.filesUpdated, 1);
    assert.equal(third.filesDeleted, 1);
    assert.equal(readFileSync(join(down, 'a/one.txt'), 'utf8'), 'changed\n');
    assert.ok(!existsSync(join(down, 'local-extra')));
  });
});

describe('security', () => {
  test('an upload through an instance symlink to /etc stays inside the instance', async () => {
    const probe = `faas-sync-probe-${randomBytes(6).toString('hex')}`;
    await sh('mkdir -p /workspace/sec && ln -sfn /etc /workspace/sec/dst');
    const src = temp();
    writeFileSync(join(src, probe), 'pwned');
    try {
      await sync(src, `/workspace/sec/dst/${probe}`);
    } catch (error) {
      assert.ok(isFaasError(error), String(error));
    }
    assert.ok(!existsSync(join('/etc', probe)), 'the host /etc is untouched');
    assert.ok(!existsSync(join('/etc', probe, probe)), 'the host /etc is untouched');
  });

  test('a download of a symlink to /etc/shadow copies the link, never host content', async () => {
    await sh('mkdir -p /workspace/sec2 && ln -sfn /etc/shadow /workspace/sec2/shadow && ln -sfn /etc /workspace/sec2/etc && echo ok > /workspace/sec2/ok');
    const down = temp();
    await sync(down, '/workspace/sec2', { direction: 'download' });
    assert.ok(lstatSync(join(down, 'shadow')).isSymbolicLink());
    assert.equal(readlinkSync(join(down, 'shadow')), '/etc/shadow');
    assert.ok(lstatSync(join(down, 'etc')).isSymbolicLink());
    assert.equal(readFileSync(join(down, 'ok'), 'utf8'), 'ok\n');
  });
});

describe('bad input', () => {
  const base = () => `/api/v1/instances/${ctx.instance.id}/sync`;

  test('a relative remote_dir is INVALID_PATH', async () => {
    const r = await ctx.server.request('POST', base(), { direction: 'upload', remote_dir: 'workspace/x', manifest: [] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID_PATH');
  });

  test("a manifest path with '..' is INVALID_PATH", async () => {
    const r = await ctx.server.request('POST', base(), { direction: 'upload', remote_dir: '/workspace/x', manifest: [{ path: 'a/../../etc/passwd', type: 'file', mode: 0o644, size: 1, mtime_ns: '1' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID_PATH');
  });

  test('an unknown sync id is SYNC_NOT_FOUND', async () => {
    const r = await fetch(`${ctx.server.url}${base()}/sync-nope/content`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.server.apiKey}`, 'content-type': 'application/octet-stream' },
      body: Buffer.from([0]),
    });
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'SYNC_NOT_FOUND');
    const g = await ctx.server.request('GET', `${base()}/sync-nope/content`);
    assert.equal(g.status, 404);
  });

  test('content for an unknown instance is 404', async () => {
    const res = await fetch(`${ctx.server.url}/api/v1/instances/inst-nope/sync/sync-nope/content`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.server.apiKey}`, 'content-type': 'application/octet-stream' },
      body: Buffer.from([0]),
    });
    assert.equal(res.status, 404);
  });

  test('a download whose client leaves before reading frees its session for another try', async () => {
    await sh('mkdir -p /workspace/leave && head -c 3000000 /dev/urandom > /workspace/leave/big && echo small > /workspace/leave/s');
    const plan = await ctx.server.request('POST', base(), { direction: 'download', remote_dir: '/workspace/leave', manifest: [] });
    assert.equal(plan.status, 200, plan.text);
    const url = `${ctx.server.url}${base()}/${plan.body.sync_id}/content`;
    const headers = { authorization: `Bearer ${ctx.server.apiKey}` };
    const controller = new AbortController();
    const first = await fetch(url, { headers, signal: controller.signal });
    assert.equal(first.status, 200);
    controller.abort();
    // The session is released (not left busy): the same sync can be fetched again, whole.
    let again: Response | undefined;
    for (let i = 0; i < 50; i++) {
      again = await fetch(url, { headers });
      if (again.status !== 409) break;
      await again.arrayBuffer();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(again!.status, 200);
    const bytes = Buffer.from(await again!.arrayBuffer());
    assert.ok(bytes.length > 3_000_000, `got ${bytes.length} bytes`);
  });

  test('the SDK reports a missing local dir and an unknown instance as errors', async () => {
    await assert.rejects(sync(join(temp(), 'missing'), '/workspace/x'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT' || isFaasError(e));
    await assert.rejects(syncFiles(ctx.client, 'inst-nope', temp(), '/workspace/x'), (e: unknown) => isFaasError(e) && e.status === 404);
  });
});

describe('interrupted and large transfers', () => {
  test('an interrupted upload keeps what arrived; the next sync sends only the rest', async () => {
    const src = temp();
    const size = 4 * 1024 * 1024;
    for (let i = 0; i < 8; i++) writeFileSync(join(src, `f${i}.bin`), randomBytes(size));
    const total = 8 * size;
    const controller = new AbortController();
    await assert.rejects(
      sync(src, '/workspace/interrupt', {
        compression: 'none',
        signal: controller.signal,
        progressIntervalMs: 0,
        onProgress: (p) => {
          if (p.bytesDone >= total / 2) controller.abort(new Error('cut on purpose'));
        },
      }),
      /cut on purpose/,
    );
    await new Promise((r) => setTimeout(r, 500)); // let the server see the cut
    const second = await sync(src, '/workspace/interrupt', { compression: 'none' });
    assert.ok(second.bytesTransferred > 0 && second.bytesTransferred < total, `second sync sent ${second.bytesTransferred} of ${total}`);
    const sums = await sh('cd /workspace/interrupt && sha256sum f*.bin && ls -A');
    for (let i = 0; i < 8; i++) {
      const { createHash } = await import('node:crypto');
      const h = createHash('sha256').update(readFileSync(join(src, `f${i}.bin`))).digest('hex');
      assert.match(sums, new RegExp(`${h}  f${i}\\.bin`));
    }
    assert.doesNotMatch(sums, /faas-tmp/, 'no temp files left behind');
  });

  test('gzip compression works end to end', async () => {
    const src = temp();
    writeFileSync(join(src, 'text.txt'), 'abc'.repeat(1_000_000));
    const r = await sync(src, '/workspace/gz', { compression: 'gzip' });
    assert.equal(r.bytesTransferred, 3_000_000);
    assert.equal(await sh('wc -c < /workspace/gz/text.txt'), '3000000\n');
  });

  test('a 1 GiB upload keeps the SDK memory bounded', { timeout: 300_000 }, async () => {
    // The server runs in its own process here, so the RSS measured is the SDK's alone.
    const dataDir = temp();
    const proc = await startServerProcess({ dataDir, apiKey: `test_${randomBytes(12).toString('hex')}` });
    try {
      const c = new FaaSPlatformClient({ platformUrl: proc.url, apiKey: proc.apiKey });
      const inst = await c.instances.create();
      const src = temp();
      const size = Number(process.env.FAAS_SYNC_BIG_MB ?? 1024) * 1024 * 1024;
      const fd = openSync(join(src, 'big.bin'), 'w');
      writeFileSync(fd, randomBytes(1024 * 1024)); // real data at the start, sparse after
      ftruncateSync(fd, size);
      closeSync(fd);
      const base = process.memoryUsage().rss;
      let peak = base;
      const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const started = performance.now();
      try {
        const r = await syncFiles(c, inst.id, src, '/workspace/big', { compression: 'none' });
        assert.equal(r.bytesTransferred, size);
      } finally {
        clearInterval(timer);
      }
      const ms = performance.now() - started;
      const growth = (peak - base) / 1024 / 1024;
      process.stderr.write(`# ${size / 2 ** 20} MiB upload: ${Math.round(ms)} ms, SDK RSS growth ${growth.toFixed(1)} MB\n`);
      assert.ok(growth < 150, `RSS grew ${growth.toFixed(1)} MB`);
      const st = await inst.exec({ command: ['stat', '-c', '%s %u', '/workspace/big/big.bin'] });
      assert.equal(st.stdout, `${size} 1000\n`);
    } finally {
      await proc.stop();
    }
  });
});

describe('faas sync (CLI)', () => {
  function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolveRun) => {
      execFile(process.execPath, [CLI, '--url', ctx.server.url, '--api-key', ctx.server.apiKey, ...args], { env: { ...process.env, FAAS_URL: '', FAAS_API_KEY: '' } }, (error, stdout, stderr) => {
        resolveRun({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  test('upload and download with --dry-run and --delete', { timeout: 120_000 }, async () => {
    const src = makeTree();
    const dest = `${ctx.instance.id}:/workspace/cli`;
    const dry = await cli('sync', src, dest, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /dry run: would have copied \d+, updated 0, deleted 0, skipped 0/);
    assert.equal((await ctx.instance.exec({ command: ['test', '-e', '/workspace/cli'] })).exitCode, 1, 'a dry run creates nothing');
    const up = await cli('sync', src, dest, '--exclude', '*.sh');
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /^copied \d+, updated 0, deleted 0, skipped 0, [\d.]+ MB in \d+ ms\n$/);
    assert.equal((await ctx.instance.exec({ command: ['test', '-e', '/workspace/cli/run.sh'] })).exitCode, 1);
    await sh('touch /workspace/cli/extra');
    const del = await cli('sync', src, dest, '--delete', '--json');
    assert.equal(del.code, 0, del.stderr);
    const json = JSON.parse(del.stdout) as { filesDeleted: number; filesCopied: number };
    assert.equal(json.filesDeleted, 1);
    assert.equal(json.filesCopied, 1); // run.sh, no longer excluded

    const down = temp();
    writeFileSync(join(down, 'local-only'), 'x');
    const ddry = await cli('sync', dest, down, '--delete', '--dry-run');
    assert.equal(ddry.code, 0, ddry.stderr);
    assert.match(ddry.stdout, /delete +local-only/);
    assert.ok(existsSync(join(down, 'local-only')));
    const d = await cli('sync', dest, down, '--delete');
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /deleted 1/);
    assert.ok(!existsSync(join(down, 'local-only')));
    assert.equal(readFileSync(join(down, 'a/b/c/deep.txt'), 'utf8'), 'deep\n');
  });

  test('exit statuses: 2 for usage mistakes, 1 for failures', async () => {
    const local = temp();
    assert.equal((await cli('sync', local, local)).code, 2);
    assert.equal((await cli('sync', `${ctx.instance.id}:/a`, `${ctx.instance.id}:/b`)).code, 2);
    assert.equal((await cli('sync', local, `${ctx.instance.id}:relative`)).code, 2);
    const missing = await cli('sync', local, 'inst-nope:/workspace/x');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error: /);
  });
});
