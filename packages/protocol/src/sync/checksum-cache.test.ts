import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChecksumCache, RACY_MARGIN_NS, type FileIdentity } from './checksum-cache.ts';
import { buildManifest, checksumEntries, checksumFile } from './manifest.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'faas-cksum-cache-'));
  dirs.push(d);
  return d;
}

const NOW = 10_000_000_000_000n;
const old = (over: Partial<FileIdentity> = {}): FileIdentity => ({ dev: 1n, ino: 2n, size: 3n, mtimeNs: NOW - 10n * RACY_MARGIN_NS, ctimeNs: NOW - 10n * RACY_MARGIN_NS, ...over });

test('a checksum is found again only for the exact same file version', () => {
  const c = new ChecksumCache();
  c.remember(old(), 'aa', NOW);
  assert.equal(c.lookup(old()), 'aa');
  for (const field of ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'] as const) {
    assert.equal(c.lookup(old({ [field]: old()[field] + 1n })), undefined, `${field} differs`);
  }
});

test('a file changed within the racy margin is not remembered', () => {
  const c = new ChecksumCache();
  c.remember(old({ ctimeNs: NOW - RACY_MARGIN_NS / 2n }), 'aa', NOW);
  c.remember(old({ ino: 9n, mtimeNs: NOW - 1n }), 'bb', NOW);
  assert.equal(c.size, 0);
});

test('beyond its size the least recently used entry goes', () => {
  const c = new ChecksumCache(2);
  c.remember(old({ ino: 1n }), 'a', NOW);
  c.remember(old({ ino: 2n }), 'b', NOW);
  assert.equal(c.lookup(old({ ino: 1n })), 'a'); // 2 is now the least recently used
  c.remember(old({ ino: 3n }), 'c', NOW);
  assert.equal(c.lookup(old({ ino: 2n })), undefined);
  assert.equal(c.lookup(old({ ino: 1n })), 'a');
  assert.equal(c.lookup(old({ ino: 3n })), 'c');
});

test('checksumEntries reuses a remembered checksum and reads again once the file changed, same size and mtime included', async () => {
  const dir = temp();
  writeFileSync(join(dir, 'f'), 'aaaa');
  utimesSync(join(dir, 'f'), 1_700_000_000, 1_700_000_000); // a whole second: it can be put back exactly
  await sleep(Number(RACY_MARGIN_NS / 1_000_000n) + 20); // old enough to be remembered
  const cache = new ChecksumCache();
  const first = await buildManifest(dir);
  const entry = () => ({ ...first.entries.find((e) => e.path === 'f')! });
  const e1 = entry();
  await checksumEntries(dir, [e1], { cache, identities: first.identities });
  assert.equal(cache.size, 1);
  assert.equal(e1.checksum, (await checksumFile(dir, 'f')).checksum);

  // The cache is what answers while the file is unchanged: poison it to see it used.
  const id = first.identities.get('f')!;
  cache.remember(id, 'f'.repeat(32), BigInt(Date.now()) * 1_000_000n);
  const e2 = entry();
  await checksumEntries(dir, [e2], { cache, identities: (await buildManifest(dir)).identities });
  assert.equal(e2.checksum, 'f'.repeat(32));

  // Same size, mtime put back: ctime moved, so the file is read again.
  writeFileSync(join(dir, 'f'), 'bbbb');
  utimesSync(join(dir, 'f'), 1_700_000_000, 1_700_000_000);
  const again = await buildManifest(dir);
  assert.equal(again.entries.find((e) => e.path === 'f')!.mtimeNs, first.entries.find((e) => e.path === 'f')!.mtimeNs);
  const e3 = entry();
  await checksumEntries(dir, [e3], { cache, identities: again.identities });
  assert.equal(e3.checksum, (await checksumFile(dir, 'f')).checksum);
  assert.notEqual(e3.checksum, e1.checksum);
});
