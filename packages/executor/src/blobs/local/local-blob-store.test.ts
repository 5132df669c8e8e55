import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runBlobStoreConformance } from '../conformance.ts';
import type { BlobStore } from '../types.ts';
import { LocalBlobStore, openLocalBlobStore } from './local-blob-store.ts';

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

async function freshStore(): Promise<LocalBlobStore> {
  const root = await mkdtemp(join(tmpdir(), 'faas-cas-'));
  roots.push(root);
  return openLocalBlobStore({ root: join(root, 'cas') });
}

function local(store: BlobStore): LocalBlobStore {
  assert.ok(store instanceof LocalBlobStore);
  return store;
}

/** Overwrites bytes of a 0o444 blob file in place, as bit rot (or a stray writer with rights) would. */
async function corrupt(store: BlobStore, hash: string): Promise<void> {
  const path = local(store).pathOf(hash);
  await chmod(path, 0o644);
  const file = await open(path, 'r+');
  try {
    await file.write(Buffer.from('CORRUPTED'), 0, 9, 10);
  } finally {
    await file.close();
  }
  await chmod(path, 0o444);
}

async function leaveTemp(store: BlobStore): Promise<string> {
  const name = `${randomBytes(16).toString('hex')}.tmp`;
  await writeFile(join(local(store).root, 'tmp', name), randomBytes(100));
  return `tmp/${name}`;
}

runBlobStoreConformance('local dir', freshStore, { corrupt, leaveTemp });

describe('LocalBlobStore specifics', () => {
  it('stores a blob at <root>/<first two hex>/<hash>, read-only (0o444), with pathOf naming it and no temp left', async () => {
    const store = await freshStore();
    const content = randomBytes(12345);
    const { hash } = await store.put(content);
    const path = join(store.root, hash.slice(0, 2), hash);
    assert.equal(store.pathOf(hash), path);
    const st = await stat(path);
    assert.equal(st.mode & 0o777, 0o444);
    assert.equal(st.size, content.length);
    assert.deepEqual((await readdir(store.root)).sort(), [hash.slice(0, 2), 'tmp'].sort());
    assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
  });

  it('pathOf refuses a malformed hash instead of building a path from it', async () => {
    const store = await freshStore();
    assert.throws(() => store.pathOf('../../etc/passwd'), (err: unknown) => (err as { code?: string }).code === 'INVALID_HASH');
  });

  it('a put whose source errors mid-stream leaves no blob file and no temp file', async () => {
    const store = await freshStore();
    const source = (async function* () {
      yield randomBytes(1024 * 1024);
      throw new Error('disk unplugged');
    })();
    await assert.rejects(store.put(source), /disk unplugged/);
    assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
    assert.deepEqual((await readdir(store.root)).filter((d) => d !== 'tmp'), []);
  });

  it('a hash mismatch leaves no temp file', async () => {
    const store = await freshStore();
    await assert.rejects(store.put(randomBytes(10), { expectedHash: 'a'.repeat(64) }));
    assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
  });

  it('corruption is caught among many blobs and the others stay clean', async () => {
    const store = await freshStore();
    const hashes = [];
    for (let i = 0; i < 10; i++) hashes.push((await store.put(randomBytes(100 + i))).hash);
    await corrupt(store, hashes[3]!);
    const damaged = await store.readFile(hashes[3]!);
    const result = await store.verify();
    assert.equal(result.checked, 10);
    assert.deepEqual(result.corrupt, [{ hash: hashes[3], actualHash: createHash('sha256').update(damaged).digest('hex'), size: 103 }]);
  });

  it('files that are not blobs are strays for verify and invisible to list and gc', async () => {
    const store = await freshStore();
    const { hash } = await store.put(randomBytes(10));
    const other = createHash('sha256').update('misplaced').digest('hex');
    const wrongDir = other.startsWith('00') ? '01' : '00';
    await mkdir(join(store.root, wrongDir), { recursive: true });
    await writeFile(join(store.root, wrongDir, other), 'misplaced');
    await writeFile(join(store.root, hash.slice(0, 2), 'notes.txt'), 'x');
    await writeFile(join(store.root, 'README'), 'x');
    const result = await store.verify();
    assert.equal(result.checked, 1);
    assert.deepEqual(result.strays.sort(), [`${wrongDir}/${other}`, `${hash.slice(0, 2)}/notes.txt`, 'README'].sort());
    assert.deepEqual(
      (await collectList(store)).map((b) => b.hash),
      [hash],
    );
    assert.equal((await store.gc(() => false, { now: () => Date.now() + 3_600_000 })).scanned, 1);
  });

  it('blobs survive reopening the store on the same directory', async () => {
    const first = await freshStore();
    const content = randomBytes(50_000);
    const { hash } = await first.put(content);
    const second = await openLocalBlobStore({ root: first.root });
    assert.equal(await second.has(hash), true);
    assert.deepEqual(await second.readFile(hash), content);
    assert.deepEqual(await collectList(second), [{ hash, size: content.length }]);
    assert.equal((await second.put(content)).created, false);
  });

  it('a lease of one store is refused by another', async () => {
    const a = await freshStore();
    const b = await freshStore();
    await assert.rejects(b.put(Buffer.from('x'), { lease: a.lease() }), TypeError);
    assert.throws(() => b.batch({ lease: a.lease() }), TypeError);
  });
});

describe('LocalBlobStore batches', () => {
  const tempFiles = (store: LocalBlobStore) => readdir(join(store.root, 'tmp'));

  it('a batch keeps one read-only temp file per new blob until commit links them and removes the temps', async () => {
    const store = await freshStore();
    const lease = store.lease();
    const batch = store.batch({ lease });
    const small = randomBytes(1000);
    const large = randomBytes(1024 * 1024);
    await batch.put(small);
    await batch.put(large);
    await batch.put(Buffer.from(small)); // duplicates write no further temp file
    await batch.put((async function* () { yield large.subarray(0, 600_000); yield large.subarray(600_000); })());
    const temps = await tempFiles(store);
    assert.equal(temps.length, 2);
    for (const name of temps) {
      assert.match(name, /^[0-9a-f]{32}\.tmp$/);
      assert.equal((await stat(join(store.root, 'tmp', name))).mode & 0o777, 0o444);
    }
    assert.deepEqual(await readdir(store.root), ['tmp'], 'nothing published before commit');
    assert.deepEqual(await batch.commit(), { created: 2, createdBytes: small.length + large.length });
    assert.deepEqual(await tempFiles(store), []);
    for (const content of [small, large]) {
      const st = await stat(store.pathOf(sha256(content)));
      assert.equal(st.mode & 0o777, 0o444);
      assert.equal(st.nlink, 1, 'the temp name is gone');
    }
    lease.release();
  });

  it('commit syncs the filesystem once before any blob is visible and once after publishing', async () => {
    const store = await freshStore();
    const lease = store.lease();
    const batch = store.batch({ lease });
    const hashes: string[] = [];
    for (let i = 0; i < 300; i++) hashes.push((await batch.put(randomBytes(100))).hash);
    const visibleAtSync: number[] = [];
    const sync = store.syncFilesystem.bind(store);
    store.syncFilesystem = async () => {
      let visible = 0;
      for (const hash of hashes) if (await store.has(hash)) visible++;
      visibleAtSync.push(visible);
      await sync();
    };
    assert.deepEqual(await batch.commit(), { created: 300, createdBytes: 30_000 });
    assert.deepEqual(visibleAtSync, [0, 300]);
    lease.release();
  });

  it('after a failed commit nothing unsynced is visible, and abort removes the temps', async () => {
    const store = await freshStore();
    const lease = store.lease();
    const batch = store.batch({ lease });
    const { hash } = await batch.put(randomBytes(100));
    store.syncFilesystem = () => Promise.reject(new Error('EIO'));
    await assert.rejects(batch.commit(), /EIO/);
    assert.equal(await store.has(hash), false);
    await assert.rejects(batch.put(randomBytes(10)), /failed/);
    await batch.abort();
    await batch.abort();
    assert.deepEqual(await tempFiles(store), []);
    lease.release();
  });

  it('an abort while a put is still streaming: the put rejects and removes its own temp file', async () => {
    const store = await freshStore();
    const lease = store.lease();
    const batch = store.batch({ lease });
    let resume!: () => void;
    let started!: () => void;
    const wasStarted = new Promise<void>((resolve) => (started = resolve));
    const put = batch.put(
      (async function* () {
        yield randomBytes(512 * 1024);
        started();
        await new Promise<void>((resolve) => (resume = resolve));
        yield randomBytes(512 * 1024);
      })(),
    );
    await wasStarted;
    await batch.abort();
    resume();
    await assert.rejects(put, /aborted/);
    assert.deepEqual(await tempFiles(store), []);
    assert.deepEqual(await readdir(store.root), ['tmp']);
    lease.release();
  });

  it('after a crash mid-batch, the restarted store removes the leftovers and verifies clean', async () => {
    const crashed = await freshStore();
    await crashed.put(randomBytes(10));
    const batch = crashed.batch({ lease: crashed.lease() });
    const pending = await batch.put(randomBytes(1000));
    await batch.put(randomBytes(1024 * 1024));
    await leaveTemp(crashed); // a plain put that died mid-write
    // "Restart": a new store object on the same directory; the old one's batch is never finished.
    const restarted = await openLocalBlobStore({ root: crashed.root });
    assert.equal((await restarted.verify()).strays.length, 3);
    assert.equal(await restarted.has(pending.hash), false);
    assert.equal(await restarted.removeLeftovers(), 3);
    assert.deepEqual(await restarted.verify(), { checked: 1, corrupt: [], strays: [] });
    assert.deepEqual(await tempFiles(restarted), []);
  });
});

function sha256(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

async function collectList(store: BlobStore) {
  const out = [];
  for await (const b of store.list()) out.push(b);
  return out;
}
