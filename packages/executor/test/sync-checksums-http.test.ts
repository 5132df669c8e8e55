/**
 * Checksum mode over the wire (docs/sync-protocol.md, "Checksum mode"): the two-phase plan
 * request, its validation, and the SDK in both directions, against a real server.
 */
import assert from 'node:assert/strict';
import { readFileSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { checksumFile } from '@faas/protocol/sync';
import { useSyncInstance } from './fixtures/sync-instance.ts';

const ctx = useSyncInstance('faas-sync-sum-test-');
const { temp, sh, sync } = ctx;

const T = 1_600_000_000.123456;

/** a.txt, b.txt (same size), big.bin (3 MiB), new.txt (only here). */
function tree(): string {
  const d = temp();
  mkdirSync(join(d, 'sub'));
  writeFileSync(join(d, 'a.txt'), 'aaaa\n');
  writeFileSync(join(d, 'sub/b.txt'), 'bbbb\n');
  writeFileSync(join(d, 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
  for (const f of ['a.txt', 'sub/b.txt', 'big.bin']) utimesSync(join(d, f), T, T);
  return d;
}

describe('checksum mode, SDK', () => {
  test('upload: a same-size, same-mtime edit (small and large file) is found; a dry run plans what the real run does', async () => {
    const src = tree();
    const remote = '/workspace/sum-up';
    await sync(src, remote);
    writeFileSync(join(src, 'a.txt'), 'AAAA\n');
    const big = readFileSync(join(src, 'big.bin'));
    big[big.length - 1] = 8;
    writeFileSync(join(src, 'big.bin'), big);
    for (const f of ['a.txt', 'big.bin']) utimesSync(join(src, f), T, T);
    assert.equal((await sync(src, remote)).filesUpdated, 0, 'the quick check misses them');
    const dry = await sync(src, remote, { checksumOnly: true, dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.equal(await sh(`cat ${remote}/a.txt`), 'aaaa\n', 'a dry run changes nothing');
    const real = await sync(src, remote, { checksumOnly: true });
    assert.deepEqual(real.plan, dry.plan);
    assert.deepEqual(
      real.plan.steps.filter((s) => s.action !== 'skip').map((s) => [s.path, s.reason]),
      [
        ['a.txt', 'content'],
        ['big.bin', 'content'],
      ],
    );
    assert.equal(await sh(`cat ${remote}/a.txt`), 'AAAA\n');
    assert.equal(await sh(`tail -c 1 ${remote}/big.bin | od -An -tu1`), '   8\n');
    const again = await sync(src, remote, { checksumOnly: true });
    assert.equal(again.filesCopied + again.filesUpdated + again.filesDeleted, 0);
  });

  test('with checksums remembered on both sides, same-size same-mtime edits on either side are still found', async () => {
    const src = tree();
    const remote = '/workspace/sum-remembered';
    await sync(src, remote);
    await new Promise((r) => setTimeout(r, 150)); // past the racy margin: both sides remember what they read next
    assert.equal((await sync(src, remote, { checksumOnly: true })).filesUpdated, 0);
    // In the instance: same size, mtime put back (to the microsecond the plan compares).
    await sh(`printf 'XXXX\\n' > ${remote}/a.txt && touch -d @1600000000.123456 ${remote}/a.txt`);
    // Locally: same size, mtime put back.
    writeFileSync(join(src, 'sub/b.txt'), 'BBBB\n');
    utimesSync(join(src, 'sub/b.txt'), T, T);
    assert.equal((await sync(src, remote)).filesUpdated, 0, 'the quick check misses both');
    const r = await sync(src, remote, { checksumOnly: true });
    assert.deepEqual(
      r.plan.steps.filter((s) => s.action !== 'skip').map((s) => [s.path, s.reason]),
      [
        ['a.txt', 'content'],
        ['sub/b.txt', 'content'],
      ],
    );
    assert.equal(await sh(`cat ${remote}/a.txt ${remote}/sub/b.txt`), 'aaaa\nBBBB\n');
  });

  test('download: a same-size, same-mtime local edit is found and replaced', async () => {
    const src = tree();
    const remote = '/workspace/sum-down';
    await sync(src, remote);
    const down = temp();
    await sync(down, remote, { direction: 'download' });
    writeFileSync(join(down, 'sub/b.txt'), 'XXXX\n');
    utimesSync(join(down, 'sub/b.txt'), T, T);
    assert.equal((await sync(down, remote, { direction: 'download' })).filesUpdated, 0);
    const dry = await sync(down, remote, { direction: 'download', checksumOnly: true, dryRun: true });
    const real = await sync(down, remote, { direction: 'download', checksumOnly: true });
    assert.deepEqual(real.plan, dry.plan);
    assert.deepEqual(real.plan.steps.filter((s) => s.action !== 'skip').map((s) => [s.path, s.reason]), [['sub/b.txt', 'content']]);
    assert.equal(readFileSync(join(down, 'sub/b.txt'), 'utf8'), 'bbbb\n');
  });
});

describe('checksum mode, the two requests', () => {
  const base = () => `/api/v1/instances/${ctx.instance.id}/sync`;
  let src: string;
  const remote = '/workspace/sum-proto';
  const manifest = async () => {
    const { buildManifest } = await import('@faas/protocol/sync');
    return (await buildManifest(src)).entries.map((e) => ({ path: e.path, type: e.type, mode: e.mode, size: e.size, mtime_ns: e.mtimeNs, ...(e.target ? { target: e.target } : {}) }));
  };
  const first = async (options: Record<string, unknown> = {}) => {
    const r = await ctx.server.request('POST', base(), { direction: 'upload', remote_dir: remote, options: { checksum_only: true, ...options }, manifest: await manifest() });
    assert.equal(r.status, 200, r.text);
    return r.body as { sync_id: string; checksums_needed: string[] };
  };

  before(async () => {
    src = tree();
    writeFileSync(join(src, 'new.txt'), 'only here');
    await sync(src, remote);
    writeFileSync(join(src, 'sub/b.txt'), 'bbbbbb\n'); // another size: no checksum needed
  });

  test('the first answer names the candidates (same path, files, same size) and no plan; the second answers the plan', async () => {
    const r = await first();
    assert.match(r.sync_id, /^sync-/);
    assert.deepEqual([...r.checksums_needed].sort(), ['a.txt', 'big.bin', 'new.txt']);
    assert.equal((r as Record<string, unknown>).plan, undefined);
    const checksums = await Promise.all(r.checksums_needed.map(async (p) => (await checksumFile(src, p)).checksum));
    const second = await ctx.server.request('POST', `${base()}/${r.sync_id}/checksums`, { checksums });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.body.sync_id, r.sync_id, 'the same id goes on to the transfer');
    assert.deepEqual(
      second.body.plan.steps.filter((s: { action: string }) => s.action !== 'skip').map((s: { path: string; reason: string }) => [s.path, s.reason]),
      [['sub/b.txt', 'size']],
    );
    const again = await ctx.server.request('POST', `${base()}/${r.sync_id}/checksums`, { checksums });
    assert.equal(again.status, 400);
    assert.equal(again.body.error.code, 'VALIDATION_FAILED', 'checksums cannot be sent twice');
  });

  test('a dry run: the second answer has the plan and no sync id, and ends the session', async () => {
    const r = await first({ dry_run: true });
    const checksums = await Promise.all(r.checksums_needed.map(async (p) => (await checksumFile(src, p)).checksum));
    const second = await ctx.server.request('POST', `${base()}/${r.sync_id}/checksums`, { checksums });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.body.sync_id, null);
    assert.equal(second.body.plan.steps.length > 0, true);
    const gone = await ctx.server.request('POST', `${base()}/${r.sync_id}/checksums`, { checksums });
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'SYNC_NOT_FOUND');
  });

  test('wrong count, malformed hex, unknown sync id, content before checksums: clear errors with stable codes', async () => {
    const r = await first();
    const good = await Promise.all(r.checksums_needed.map(async (p) => (await checksumFile(src, p)).checksum));
    const fewer = await ctx.server.request('POST', `${base()}/${r.sync_id}/checksums`, { checksums: good.slice(1) });
    assert.equal(fewer.status, 400);
    assert.equal(fewer.body.error.code, 'VALIDATION_FAILED');
    assert.equal(fewer.body.error.details.expected, good.length);
    for (const bad of ['A'.repeat(32), 'a'.repeat(31), 'a'.repeat(64), 'zz'.repeat(16)]) {
      const malformed = await ctx.server.request('POST', `${base()}/${r.sync_id}/checksums`, { checksums: [bad, ...good.slice(1)] });
      assert.equal(malformed.status, 400, bad);
      assert.equal(malformed.body.error.code, 'VALIDATION_FAILED');
    }
    const asObject = await ctx.server.request('POST', `${base()}/${r.sync_id}/checksums`, { checksums: { 'a.txt': good[0] } });
    assert.equal(asObject.status, 400);
    assert.equal(asObject.body.error.code, 'VALIDATION_FAILED');
    const content = await fetch(`${ctx.server.url}${base()}/${r.sync_id}/content`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.server.apiKey}`, 'content-type': 'application/octet-stream' },
      body: Buffer.from([0]),
    });
    assert.equal(content.status, 400, 'the session has no plan yet');
    assert.equal(((await content.json()) as { error: { code: string } }).error.code, 'VALIDATION_FAILED');
    const unknown = await ctx.server.request('POST', `${base()}/sync-nope/checksums`, { checksums: [] });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'SYNC_NOT_FOUND');
    // After the refusals the session still takes the right answer.
    const ok = await ctx.server.request('POST', `${base()}/${r.sync_id}/checksums`, { checksums: good });
    assert.equal(ok.status, 200, ok.text);
  });

  test('quick mode stays one request', async () => {
    const r = await ctx.server.request('POST', base(), { direction: 'upload', remote_dir: remote, options: { dry_run: true }, manifest: await manifest() });
    assert.equal(r.status, 200);
    assert.equal(r.body.checksums_needed, undefined);
    assert.ok(Array.isArray(r.body.plan.steps));
  });
});
