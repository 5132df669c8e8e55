import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildManifest, ChecksumCache, checksumFile, type ManifestEntry } from '@faas/protocol/sync';
import { RootedFs } from '../runtime/rooted-fs.ts';
import { ChecksumThread } from './sync-checksum-thread.ts';
import { checksumRooted } from './sync-checksums.ts';

let dir: string;
let fs: RootedFs;
const thread = new ChecksumThread();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'faas-sync-sums-'));
  writeFileSync(join(dir, 'empty'), '');
  for (let i = 0; i < 300; i++) writeFileSync(join(dir, `s${i}`), randomBytes(100 + i)); // more than one batch
  writeFileSync(join(dir, 'big'), randomBytes(3 * 1024 * 1024 + 7));
  for (const name of ['empty', 'big']) utimesSync(join(dir, name), 1_700_000_000, 1_700_000_000);
  fs = RootedFs.open(dir, { uid: 0, gid: 0 });
});

after(async () => {
  fs.close();
  await thread.close();
  rmSync(dir, { recursive: true, force: true });
});

async function files(): Promise<ManifestEntry[]> {
  return (await buildManifest(dir)).entries.filter((e) => e.type === 'file');
}

async function expected(entries: ManifestEntry[]): Promise<string[]> {
  return Promise.all(entries.map(async (e) => (await checksumFile(dir, e.path)).checksum));
}

test('the second thread checksums every file as the protocol does, across batches', async () => {
  const entries = await files();
  await checksumRooted(fs, '', entries, undefined, thread);
  assert.deepEqual(
    entries.map((e) => e.checksum),
    await expected(entries),
  );
});

test('when the thread is gone, the event loop checksums the batch itself', async () => {
  const gone = { checksum: () => Promise.reject(new Error('the checksum thread exited with code 1')) } as unknown as ChecksumThread;
  const entries = await files();
  await checksumRooted(fs, '', entries, undefined, gone);
  assert.deepEqual(
    entries.map((e) => e.checksum),
    await expected(entries),
  );
});

test('remembered checksums are used without opening the file', async () => {
  await sleep(80); // past the racy margin
  const cache = new ChecksumCache();
  const first = await buildManifest(dir);
  const entries = first.entries.filter((e) => e.path === 'big');
  await checksumRooted(fs, '', entries, { cache, identities: first.identities }, thread);
  assert.equal(cache.size, 1);
  const again = first.entries.filter((e) => e.path === 'big').map((e) => ({ ...e, checksum: undefined }));
  const unreadable = { openRead: () => assert.fail('a remembered file must not be opened') } as unknown as RootedFs;
  await checksumRooted(unreadable, '', again, { cache, identities: first.identities }, thread);
  assert.equal(again[0]!.checksum, entries[0]!.checksum);
});

test('a file grown after the walk (sparse, 1 TiB) is read only to its walked size and one byte: no endless read, no match', { timeout: 20_000 }, async () => {
  const grown = mkdtempSync(join(tmpdir(), 'faas-sync-grown-'));
  const root = RootedFs.open(grown, { uid: 0, gid: 0 });
  try {
    writeFileSync(join(grown, 'f'), randomBytes(100));
    const walked = (await buildManifest(grown)).entries.filter((e) => e.type === 'file');
    const before = (await checksumFile(grown, 'f')).checksum;
    // What a process in the instance can do between the walk and the read.
    truncateSync(join(grown, 'f'), 2 ** 40);
    for (const via of [thread, { checksum: () => Promise.reject(new Error('gone')) } as unknown as ChecksumThread]) {
      const entries = walked.map((e) => ({ ...e, checksum: undefined }));
      await checksumRooted(root, '', entries, undefined, via);
      assert.match(entries[0]!.checksum!, /^[0-9a-f]{32}$/);
      assert.notEqual(entries[0]!.checksum, before, 'a grown file must not pass as unchanged');
    }
  } finally {
    root.close();
    rmSync(grown, { recursive: true, force: true });
  }
});
