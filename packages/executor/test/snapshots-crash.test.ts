import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { detectCgroupLayout } from '../src/runtime/cgroups/layout.ts';
import { cgroupPrefixFor } from '../src/serve.ts';
import { forceCleanup } from './fixtures/force-cleanup.ts';
import { startServerProcess, startTestServer, type ServerProcess, type TestServer } from './fixtures/test-server.ts';
import { until, waitFor } from './fixtures/wait.ts';

/**
 * Snapshots under stress: the server killed (SIGKILL) in the middle of a snapshot and of a
 * restore's tree materialization, then restarted on the same data dir; instances frozen for a
 * snapshot while a process writes; FIFOs and sockets in the tree; concurrent snapshots.
 */

type Res = { status: number; body: any; text: string };
type Requester = { request(method: string, path: string, body?: unknown): Promise<Res> };

const layout = detectCgroupLayout();
const dataDirs: string[] = [];
const processes: ServerProcess[] = [];

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'faas-snapcrash-'));
  dataDirs.push(dir);
  return dir;
}

async function startProcess(dataDir: string, apiKey: string): Promise<ServerProcess> {
  const server = await startServerProcess({ dataDir, apiKey });
  processes.push(server);
  return server;
}

after(async () => {
  for (const server of processes) await server.stop('SIGTERM');
  for (const dir of dataDirs) forceCleanup(dir);
});

async function createInstance(server: Requester, body: Record<string, unknown> = {}): Promise<any> {
  const res = await server.request('POST', '/api/v1/instances', body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function sh(server: Requester, instanceId: string, code: string, expectExit = 0): Promise<string> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { code, language: 'bash', timeout_ms: 120_000 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.exit_code, expectExit, `exit ${res.body.exit_code}: ${res.body.stderr}`);
  return res.body.stdout;
}

async function snapshot(server: Requester, body: Record<string, unknown>): Promise<any> {
  const res = await server.request('POST', '/api/v1/snapshots', body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function restore(server: Requester, ref: string): Promise<any> {
  const res = await server.request('POST', `/api/v1/snapshots/${ref}/restore`, {});
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function deleteInstance(server: Requester, id: string): Promise<void> {
  const res = await server.request('DELETE', `/api/v1/instances/${id}`);
  assert.equal(res.status, 200, res.text);
}

/** Blob files published under `<dataDir>/blobs/<2 hex>/`, temp files aside. */
function publishedBlobs(dataDir: string): string[] {
  const root = join(dataDir, 'blobs');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => readdirSync(join(root, d)).map((f) => `${d}/${f}`));
}

function blobTemps(dataDir: string): string[] {
  const dir = join(dataDir, 'blobs', 'tmp');
  return existsSync(dir) ? readdirSync(dir) : [];
}

function treeTemps(dataDir: string): string[] {
  const dir = join(dataDir, 'snapshots', 'trees');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.tmp-')) : [];
}

/** Fan-out dirs of the blob store: made by a batch commit when it publishes (nothing else writes blobs here). */
function fanOutDirs(dataDir: string): string[] {
  const root = join(dataDir, 'blobs');
  return existsSync(root) ? readdirSync(root).filter((d) => /^[0-9a-f]{2}$/.test(d)) : [];
}

/** The instance group's freezer setting: "FROZEN"/"THAWED"/... (v1) or "1"/"0" (v2); undefined when the group is gone. */
function freezerState(dataDir: string, instanceId: string): string | undefined {
  const h = layout.tracking;
  const dir = join(h.mountPoint, cgroupPrefixFor(dataDir), instanceId);
  try {
    return readFileSync(join(dir, h.version === 2 ? 'cgroup.freeze' : 'freezer.state'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Live (not zombie) host processes whose command line contains `text`. */
function liveProcessesWith(text: string): string[] {
  return execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(text) && !/^\s*\d+\s+Z/.test(l));
}

/** Polls a synchronous check every few ms (tighter than waitFor: the window to hit is short). */
async function pollFast(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * ~275 MB in /workspace/big: 3000 small files of 8 KiB in 30 dirs and 5 random files of 50 MB,
 * plus a marker file. Returns the sha256 of big/large-0.
 */
const BIG_TREE = String.raw`
python3 - <<'PY'
import hashlib, os
root = '/workspace/big'
for d in range(30):
    os.makedirs(f'{root}/d{d:02}', exist_ok=True)
    for f in range(100):
        with open(f'{root}/d{d:02}/f{f:03}', 'wb') as fh:
            fh.write(os.urandom(8192))
for i in range(5):
    data = os.urandom(50 * 1024 * 1024)
    with open(f'{root}/large-{i}', 'wb') as fh:
        fh.write(data)
    if i == 0:
        print(hashlib.sha256(data).hexdigest())
with open(f'{root}/marker', 'w') as fh:
    fh.write('big tree\n')
PY
`;

/** The request's fate: a response, or the error fetch rejected with. */
function settle(p: Promise<Res>): Promise<{ res?: Res; err?: Error }> {
  return p.then(
    (res) => ({ res }),
    (err: Error) => ({ err }),
  );
}

describe('server killed (SIGKILL) in the middle of a snapshot', () => {
  const apiKey = `test_${randomBytes(12).toString('hex')}`;
  const mark = `311.${randomInt(0, 100_000)}`;
  let dataDir: string;
  let restarted: ServerProcess;
  let instanceId: string;
  let outcome: { res?: Res; err?: Error };
  let atKill: { temps: number; fanOut: number; freezer: string | undefined };
  let afterKillTemps: string[];

  before(async () => {
    dataDir = newDataDir();
    const first = await startProcess(dataDir, apiKey);
    instanceId = (await createInstance(first, { limits: { memory_mb: 2048 } })).id;
    await sh(first, instanceId, BIG_TREE);
    // A process that is frozen with the instance when the server dies.
    const bg = await first.request('POST', `/api/v1/instances/${instanceId}/exec`, { code: `sleep ${mark}`, background: true, timeout_ms: 600_000 });
    assert.equal(bg.status, 202, bg.text);
    assert.ok(await waitFor(() => liveProcessesWith(`sleep ${mark}`).length > 0, 5000), 'the sleeper started');
    assert.deepEqual(blobTemps(dataDir), [], 'no blob temp files before the snapshot');

    const pending = settle(first.request('POST', '/api/v1/snapshots', { instance_id: instanceId }));
    const midway = await pollFast(() => blobTemps(dataDir).length > 0, 30_000);
    atKill = { temps: blobTemps(dataDir).length, fanOut: fanOutDirs(dataDir).length, freezer: freezerState(dataDir, instanceId) };
    await first.stop('SIGKILL');
    assert.ok(midway, 'the snapshot never wrote a blob temp file');
    outcome = await pending;
    afterKillTemps = blobTemps(dataDir);
    restarted = await startProcess(dataDir, apiKey);
  });

  it('the snapshot request fails with a connection error, leaving temp files behind', (t) => {
    t.diagnostic(`at the kill: ${atKill.temps} temp files, ${atKill.fanOut} fan-out dirs, freezer ${atKill.freezer}`);
    assert.equal(outcome.res, undefined, `the snapshot answered: ${outcome.res?.status} ${outcome.res?.text}`);
    assert.ok(outcome.err instanceof Error);
    assert.ok(atKill.temps > 0);
    assert.equal(atKill.fanOut, 0, 'killed while scanning, before the commit published anything');
    assert.ok(afterKillTemps.length > 0, 'the kill left blob temp files (what recovery must clear)');
  });

  it('the instance was frozen at the kill; the restart ends its processes and removes its group', async () => {
    assert.ok(atKill.freezer === 'FROZEN' || atKill.freezer === 'FREEZING' || atKill.freezer === '1', `freezer state ${atKill.freezer}`);
    assert.ok(await waitFor(() => liveProcessesWith(`sleep ${mark}`).length === 0, 5000), `still running: ${liveProcessesWith(`sleep ${mark}`).join('\n')}`);
    assert.equal(freezerState(dataDir, instanceId), undefined, 'the instance cgroup remains');
  });

  it('lists no snapshot after the restart', async () => {
    const res = await restarted.request('GET', '/api/v1/snapshots');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.snapshots, []);
  });

  it('removes the blob temp files at start-up: verify is clean, with no stray file', async () => {
    assert.deepEqual(blobTemps(dataDir), []);
    const res = await restarted.request('POST', '/api/v1/snapshots/verify');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.ok, true, res.text);
    assert.deepEqual(res.body.stray_files, []);
    assert.deepEqual(res.body.missing_blobs, []);
    assert.deepEqual(res.body.corrupt_blobs, []);
    assert.equal(res.body.snapshots_checked, 0);
  });

  it('gc (grace 0) leaves no blob at all, since no snapshot references any', async () => {
    const before = publishedBlobs(dataDir).length;
    const res = await restarted.request('POST', '/api/v1/snapshots/gc', { grace_ms: 0 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.blobs_deleted, before, res.text);
    assert.deepEqual(publishedBlobs(dataDir), []);
    assert.deepEqual(blobTemps(dataDir), []);
  });

  it('marks the instance stopped (executor_restart), keeping its files', async () => {
    const res = await restarted.request('GET', `/api/v1/instances/${instanceId}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.state, 'stopped');
    assert.equal(res.body.state_reason, 'executor_restart');
    assert.equal(readFileSync(join(dataDir, 'instances', instanceId, 'upper', 'workspace', 'big', 'marker'), 'utf8'), 'big tree\n');
    const snap = await restarted.request('POST', '/api/v1/snapshots', { instance_id: instanceId });
    assert.equal(snap.status, 409, snap.text);
    assert.equal(snap.body.error.code, 'INSTANCE_NOT_RUNNING');
    await deleteInstance(restarted, instanceId);
  });

  it('still snapshots and restores after the restart', async () => {
    const inst = await createInstance(restarted);
    await sh(restarted, inst.id, 'echo after-crash > /workspace/file');
    const snap = await snapshot(restarted, { instance_id: inst.id });
    assert.equal(snap.parent_id, null);
    const copy = await restore(restarted, snap.id);
    assert.equal(await sh(restarted, copy.id, 'cat /workspace/file'), 'after-crash\n');
    const verify = await restarted.request('POST', '/api/v1/snapshots/verify');
    assert.equal(verify.body.ok, true, verify.text);
    assert.equal(verify.body.snapshots_checked, 1);
    await Promise.all([deleteInstance(restarted, inst.id), deleteInstance(restarted, copy.id)]);
  });
});

describe('server killed (SIGKILL) while a snapshot commits its blobs', () => {
  const apiKey = `test_${randomBytes(12).toString('hex')}`;
  let dataDir: string;
  let restarted: ServerProcess;
  let largeHash: string;
  let outcome: { res?: Res; err?: Error };
  let atKill: { temps: number; fanOut: number };

  before(async () => {
    dataDir = newDataDir();
    const first = await startProcess(dataDir, apiKey);
    const inst = await createInstance(first, { limits: { memory_mb: 2048 } });
    largeHash = (await sh(first, inst.id, BIG_TREE)).trim();
    const pending = settle(first.request('POST', '/api/v1/snapshots', { instance_id: inst.id }));
    // The first fan-out dir appears when the commit starts publishing (after its first syncfs).
    const committing = await pollFast(() => fanOutDirs(dataDir).length > 0, 60_000);
    atKill = { temps: blobTemps(dataDir).length, fanOut: fanOutDirs(dataDir).length };
    await first.stop('SIGKILL');
    assert.ok(committing, 'the snapshot never published a blob');
    outcome = await pending;
    restarted = await startProcess(dataDir, apiKey);
  });

  it('leaves either no snapshot (and gc reclaims every blob) or a complete one', async (t) => {
    const listed = (await restarted.request('GET', '/api/v1/snapshots')).body.snapshots as any[];
    t.diagnostic(`at the kill: ${atKill.temps} temp files, ${atKill.fanOut} fan-out dirs; request ${outcome.res ? `answered ${outcome.res.status}` : 'failed'}; snapshots after restart: ${listed.length}`);
    assert.deepEqual(blobTemps(dataDir), []);
    const verify = await restarted.request('POST', '/api/v1/snapshots/verify');
    assert.equal(verify.body.ok, true, verify.text);
    assert.deepEqual(verify.body.stray_files, []);
    assert.ok(listed.length <= 1);
    if (listed.length === 0) {
      assert.equal(outcome.res, undefined, 'a snapshot the server answered 201 for is gone');
      const gc = await restarted.request('POST', '/api/v1/snapshots/gc', { grace_ms: 0 });
      assert.equal(gc.status, 200, gc.text);
      assert.deepEqual(publishedBlobs(dataDir), []);
    } else {
      const copy = await restore(restarted, listed[0].id);
      const out = await sh(restarted, copy.id, 'cat /workspace/big/marker; sha256sum < /workspace/big/large-0 | cut -d" " -f1; find /workspace/big -type f | wc -l');
      assert.equal(out, `big tree\n${largeHash}\n${3000 + 5 + 1}\n`);
      await deleteInstance(restarted, copy.id);
    }
  });

  it('snapshots normally after the restart', async () => {
    const inst = await createInstance(restarted);
    await sh(restarted, inst.id, 'echo after-commit-crash > /workspace/file');
    const snap = await snapshot(restarted, { instance_id: inst.id });
    const copy = await restore(restarted, snap.id);
    assert.equal(await sh(restarted, copy.id, 'cat /workspace/file'), 'after-commit-crash\n');
    await Promise.all([deleteInstance(restarted, inst.id), deleteInstance(restarted, copy.id)]);
  });
});

describe('server killed (SIGKILL) while a restore materializes the tree', () => {
  const apiKey = `test_${randomBytes(12).toString('hex')}`;
  let dataDir: string;
  let restarted: ServerProcess;
  let snap: any;
  let largeHash: string;
  let outcome: { res?: Res; err?: Error };
  let leftAfterKill: string[];

  before(async () => {
    dataDir = newDataDir();
    const first = await startProcess(dataDir, apiKey);
    const inst = await createInstance(first, { limits: { memory_mb: 2048 } });
    largeHash = (await sh(first, inst.id, BIG_TREE)).trim();
    snap = await snapshot(first, { instance_id: inst.id });
    await deleteInstance(first, inst.id);
    assert.deepEqual(treeTemps(dataDir), []);

    const pending = settle(first.request('POST', `/api/v1/snapshots/${snap.id}/restore`, {}));
    const midway = await pollFast(() => treeTemps(dataDir).length > 0, 30_000);
    await first.stop('SIGKILL');
    assert.ok(midway, 'the restore never started a tree');
    outcome = await pending;
    leftAfterKill = treeTemps(dataDir);
    restarted = await startProcess(dataDir, apiKey);
  });

  it('the restore request fails with a connection error, leaving a half-built tree', () => {
    assert.equal(outcome.res, undefined, `the restore answered: ${outcome.res?.status} ${outcome.res?.text}`);
    assert.ok(outcome.err instanceof Error);
    assert.equal(leftAfterKill.length, 1, 'one .tmp-* tree right after the kill');
  });

  it('removes the half-built tree at start-up; the snapshot is intact', async () => {
    assert.deepEqual(treeTemps(dataDir), []);
    const verify = await restarted.request('POST', '/api/v1/snapshots/verify');
    assert.equal(verify.body.ok, true, verify.text);
    assert.deepEqual(verify.body.stray_files, []);
    assert.equal(verify.body.snapshots_checked, 1);
    // No instance was made from it.
    const branches = await restarted.request('GET', `/api/v1/branches?snapshot_id=${snap.id}`);
    assert.deepEqual(branches.body.branches, []);
  });

  it('restores the snapshot completely after the restart', async () => {
    const copy = await restore(restarted, snap.id);
    const out = await sh(restarted, copy.id, 'cat /workspace/big/marker; sha256sum < /workspace/big/large-0 | cut -d" " -f1; find /workspace/big -type f | wc -l');
    assert.equal(out, `big tree\n${largeHash}\n${3000 + 5 + 1}\n`);
    assert.deepEqual(treeTemps(dataDir), []);
    await deleteInstance(restarted, copy.id);
  });
});

describe('in-process server', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });

  after(async () => {
    await server.close();
  });

  describe('freeze and thaw around a snapshot', () => {
    /** Replaces /workspace/counter atomically with the next number, about every millisecond. */
    const WRITER = String.raw`
exec python3 - <<'PY'
import os, time
i = 0
while True:
    i += 1
    with open('/workspace/counter.tmp', 'w') as f:
        f.write(f'{i}\n')
    os.replace('/workspace/counter.tmp', '/workspace/counter')
    time.sleep(0.001)
PY
`;
    const counter = async (id: string): Promise<number> => {
      const out = await sh(server, id, 'cat /workspace/counter');
      assert.match(out, /^\d+\n$/);
      return Number(out);
    };

    it('thaws the instance after a deterministic snapshot; the captured counter is whole; a non-deterministic one works meanwhile', async () => {
      const inst = await createInstance(server);
      const bg = await server.request('POST', `/api/v1/instances/${inst.id}/exec`, { code: WRITER, language: 'bash', background: true, timeout_ms: 120_000 });
      assert.equal(bg.status, 202, bg.text);
      await until('the writer to start', async () => ((await sh(server, inst.id, 'cat /workspace/counter 2>/dev/null || true')).length > 0 ? true : undefined));

      const snapDet = await snapshot(server, { instance_id: inst.id });
      assert.equal(snapDet.deterministic, true);
      const afterDet = await counter(inst.id);
      assert.ok(
        await until('the counter to grow after the deterministic snapshot', async () => ((await counter(inst.id)) > afterDet + 20 ? true : undefined), 10_000),
      );

      const snapLive = await snapshot(server, { instance_id: inst.id, deterministic: false });
      assert.equal(snapLive.deterministic, false);
      assert.equal(snapLive.parent_id, snapDet.id);
      const afterLive = await counter(inst.id);
      assert.ok(await until('the counter to grow after the live snapshot', async () => ((await counter(inst.id)) > afterLive + 20 ? true : undefined), 10_000));
      const status = await server.request('GET', `/api/v1/executions/${bg.body.id}`);
      assert.equal(status.body.status, 'running', status.text);

      for (const [snap, bound] of [
        [snapDet, afterDet],
        [snapLive, afterLive],
      ] as const) {
        const copy = await restore(server, snap.id);
        const captured = await counter(copy.id);
        assert.ok(captured >= 1 && captured <= bound, `captured ${captured}, read ${bound} after the snapshot`);
        // Processes are not part of a snapshot: the restored counter stays put.
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(await counter(copy.id), captured);
        await deleteInstance(server, copy.id);
      }
      await deleteInstance(server, inst.id);
    });
  });

  describe('special files', () => {
    it('FIFOs and listening unix sockets in /workspace and /tmp do not fail a snapshot and are absent from a restore', async () => {
      const inst = await createInstance(server);
      await sh(server, inst.id, 'mkfifo /workspace/fifo /tmp/fifo && echo w > /workspace/regular && echo t > /tmp/regular');
      const listener = String.raw`
exec python3 - <<'PY'
import socket, time
socks = []
for path in ('/workspace/sock', '/tmp/sock'):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    socks.append(s)
print('listening', flush=True)
time.sleep(600)
PY
`;
      const bg = await server.request('POST', `/api/v1/instances/${inst.id}/exec`, { code: listener, language: 'bash', background: true, timeout_ms: 120_000 });
      assert.equal(bg.status, 202, bg.text);
      await until('the sockets', async () => ((await sh(server, inst.id, 'test -S /workspace/sock && test -S /tmp/sock && echo yes || true')) === 'yes\n' ? true : undefined));
      assert.equal(await sh(server, inst.id, 'stat -c %F /workspace/fifo /tmp/fifo /workspace/sock /tmp/sock'), 'fifo\nfifo\nsocket\nsocket\n');

      for (const deterministic of [true, false]) {
        const snap = await snapshot(server, { instance_id: inst.id, deterministic });
        const copy = await restore(server, snap.id);
        const out = await sh(server, copy.id, 'cat /workspace/regular /tmp/regular; for p in /workspace/fifo /tmp/fifo /workspace/sock /tmp/sock; do test -e $p && echo "present: $p"; done; true');
        assert.equal(out, 'w\nt\n', `deterministic=${deterministic}`);
        await deleteInstance(server, copy.id);
      }
      // The listener was frozen and thawed, not broken.
      assert.equal((await server.request('GET', `/api/v1/executions/${bg.body.id}`)).body.status, 'running');
      await deleteInstance(server, inst.id);
    });
  });

  describe('concurrent snapshots', () => {
    it('two snapshots of one instance at once both succeed, one the parent of the other', async () => {
      const inst = await createInstance(server);
      await sh(server, inst.id, 'for i in $(seq 1 200); do head -c 20000 /dev/urandom > /workspace/f$i; done');
      const [a, b] = await Promise.all([snapshot(server, { instance_id: inst.id }), snapshot(server, { instance_id: inst.id })]);
      assert.notEqual(a.id, b.id);
      assert.equal(a.fs_hash, b.fs_hash);
      const [first, second] = a.parent_id === b.id ? [b, a] : [a, b];
      assert.equal(first.parent_id, null, `${JSON.stringify(a)}\n${JSON.stringify(b)}`);
      assert.equal(second.parent_id, first.id);
      assert.equal(second.parent_hash, first.content_hash);
      const third = await snapshot(server, { instance_id: inst.id });
      assert.equal(third.parent_id, second.id, 'the later one is the newest');
      await deleteInstance(server, inst.id);
    });

    it('snapshots of two instances at once both succeed with their own files', async () => {
      const [x, y] = await Promise.all([createInstance(server), createInstance(server)]);
      await Promise.all([
        sh(server, x.id, 'echo x > /workspace/who; for i in $(seq 1 200); do head -c 20000 /dev/urandom > /workspace/f$i; done'),
        sh(server, y.id, 'echo y > /workspace/who; for i in $(seq 1 200); do head -c 20000 /dev/urandom > /workspace/f$i; done'),
      ]);
      const [sx, sy] = await Promise.all([snapshot(server, { instance_id: x.id }), snapshot(server, { instance_id: y.id })]);
      assert.equal(sx.source_instance_id, x.id);
      assert.equal(sy.source_instance_id, y.id);
      assert.equal(sx.parent_id, null);
      assert.equal(sy.parent_id, null);
      assert.notEqual(sx.fs_hash, sy.fs_hash);
      const [cx, cy] = await Promise.all([restore(server, sx.id), restore(server, sy.id)]);
      assert.equal(await sh(server, cx.id, 'cat /workspace/who; ls /workspace | wc -l'), 'x\n201\n');
      assert.equal(await sh(server, cy.id, 'cat /workspace/who; ls /workspace | wc -l'), 'y\n201\n');
      const verify = await server.request('POST', '/api/v1/snapshots/verify');
      assert.equal(verify.body.ok, true, verify.text);
      assert.deepEqual(verify.body.stray_files, []);
      await Promise.all([x, y, cx, cy].map((i) => deleteInstance(server, i.id)));
    });
  });
});
