import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { beforeEach, describe, it } from 'node:test';
import { isFaasError } from '@faas/protocol';
import type { BlobStore } from './types.ts';

/**
 * Ways to damage a store that only a backend knows; tests needing one are skipped, with the
 * reason, when the backend does not provide it.
 */
export interface BlobStoreConformanceHooks {
  /** Changes some bytes of a stored blob in place (keeping its name), as bit rot would. */
  corrupt?(store: BlobStore, hash: string): Promise<void>;
  /** Leaves a temporary file behind as a crashed put would; returns its path as `verify` reports strays. */
  leaveTemp?(store: BlobStore): Promise<string>;
}

const HOUR = 3_600_000;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * The behaviour every BlobStore backend must have. A backend's test file calls this once per
 * configuration; passing it is what admits the backend.
 *
 * @param name shown in the test names, e.g. `'local dir'`.
 * @param open returns a new, empty store on every call.
 * @param hooks backend-specific fault injection; tests that need a missing hook are skipped.
 * @example
 * runBlobStoreConformance('local dir', async () => openLocalBlobStore({ root: await mkdtemp(...) }));
 */
export function runBlobStoreConformance(name: string, open: () => Promise<BlobStore>, hooks: BlobStoreConformanceHooks = {}): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let store: BlobStore;
    beforeEach(async () => {
      store = await open();
    });

    describe('put, has, stat, open, readFile', () => {
      it('round-trips empty content under the SHA-256 of nothing', async () => {
        const result = await store.put(Buffer.alloc(0));
        assert.deepEqual(result, { hash: EMPTY_SHA256, size: 0, created: true });
        await assertStored(store, Buffer.alloc(0));
      });

      for (const [kind, make] of sourceKinds()) {
        it(`round-trips small content given as ${kind}`, async () => {
          const content = Buffer.from(`héllo blob ${randomBytes(8).toString('hex')}\n\0\xff`);
          assert.deepEqual(await store.put(make(content)), { hash: sha256(content), size: content.length, created: true });
          await assertStored(store, content);
        });

        it(`round-trips multi-MB content given as ${kind}, streaming it back intact`, async () => {
          const content = randomBytes(5 * 1024 * 1024 + 13);
          assert.deepEqual(await store.put(make(content)), { hash: sha256(content), size: content.length, created: true });
          await assertStored(store, content);
        });
      }

      it('the same content gives the same hash from every source kind and is stored once', async () => {
        const content = randomBytes(300_000);
        const results = [];
        for (const [, make] of sourceKinds()) results.push(await store.put(make(content)));
        assert.deepEqual(
          results.map((r) => r.created),
          [true, false, false],
        );
        assert.ok(results.every((r) => r.hash === sha256(content) && r.size === content.length));
        assert.deepEqual(await collect(store.list()), [{ hash: sha256(content), size: content.length }]);
      });

      it('putFile streams a file from disk like put', async (t) => {
        const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
        const { tmpdir } = await import('node:os');
        const { join } = await import('node:path');
        const dir = await mkdtemp(join(tmpdir(), 'faas-blob-src-'));
        t.after(() => rm(dir, { recursive: true, force: true }));
        const content = randomBytes(1_000_003);
        await writeFile(join(dir, 'f'), content);
        assert.deepEqual(await store.putFile(join(dir, 'f')), { hash: sha256(content), size: content.length, created: true });
        await assertStored(store, content);
      });

      it('an expectedHash that matches stores the blob', async () => {
        const content = randomBytes(1000);
        assert.equal((await store.put(content, { expectedHash: sha256(content) })).created, true);
        assert.equal(await store.has(sha256(content)), true);
      });

      it('an expectedHash that differs throws BLOB_HASH_MISMATCH and leaves nothing behind', async () => {
        const content = randomBytes(100_000);
        const expected = sha256(Buffer.from('something else'));
        await rejectsWithCode(store.put(Readable.from([content]), { expectedHash: expected }), 'BLOB_HASH_MISMATCH', {
          expected,
          actual: sha256(content),
          size: content.length,
        });
        assert.equal(await store.has(sha256(content)), false);
        assert.equal(await store.has(expected), false);
        assert.deepEqual(await collect(store.list()), []);
        assert.deepEqual(await store.verify(), { checked: 0, corrupt: [], strays: [] });
      });

      it('a source that fails mid-stream rejects the put with its error and leaves nothing behind', async () => {
        const failing = (async function* () {
          yield randomBytes(64 * 1024);
          yield randomBytes(64 * 1024);
          throw new Error('source broke');
        })();
        await assert.rejects(store.put(failing), /source broke/);
        assert.deepEqual(await collect(store.list()), []);
        assert.deepEqual(await store.verify(), { checked: 0, corrupt: [], strays: [] });
      });

      it('malformed hashes throw INVALID_HASH from every method that takes one', async () => {
        const upper = sha256(Buffer.from('x')).toUpperCase();
        const bad = ['', 'abc', upper, 'a'.repeat(63), 'a'.repeat(65), 'g'.repeat(64), `../${'a'.repeat(61)}`, ` ${'a'.repeat(63)}`, `${'a'.repeat(63)}\n`];
        for (const hash of bad) {
          await rejectsWithCode(store.has(hash), 'INVALID_HASH');
          await rejectsWithCode(store.stat(hash), 'INVALID_HASH');
          await rejectsWithCode(store.open(hash), 'INVALID_HASH');
          await rejectsWithCode(store.readFile(hash), 'INVALID_HASH');
          await rejectsWithCode(store.delete(hash), 'INVALID_HASH');
          await rejectsWithCode(store.put(Buffer.from('x'), { expectedHash: hash }), 'INVALID_HASH');
          const lease = store.lease();
          await rejectsWithCode(lease.pin([hash]), 'INVALID_HASH');
          lease.release();
        }
        assert.deepEqual(await collect(store.list()), []);
      });

      it('an unknown hash is absent: has false, stat undefined, open and readFile throw BLOB_NOT_FOUND', async () => {
        const hash = sha256(randomBytes(16));
        assert.equal(await store.has(hash), false);
        assert.equal(await store.stat(hash), undefined);
        await rejectsWithCode(store.open(hash), 'BLOB_NOT_FOUND', { hash });
        await rejectsWithCode(store.readFile(hash), 'BLOB_NOT_FOUND', { hash });
      });

      it('readFile refuses a blob larger than maxBytes with LIMIT_OUT_OF_RANGE', async () => {
        const content = randomBytes(2000);
        const { hash } = await store.put(content);
        await rejectsWithCode(store.readFile(hash, { maxBytes: 1999 }), 'LIMIT_OUT_OF_RANGE');
        assert.deepEqual(await store.readFile(hash, { maxBytes: 2000 }), content);
      });

      it('concurrent puts of identical content all succeed and exactly one creates the blob', async () => {
        const content = randomBytes(1024 * 1024);
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.put(i % 2 === 0 ? content : Readable.from(chunked(content, 4096)))));
        assert.ok(results.every((r) => r.hash === sha256(content) && r.size === content.length));
        assert.equal(results.filter((r) => r.created).length, 1);
        assert.deepEqual(await collect(store.list()), [{ hash: sha256(content), size: content.length }]);
        assert.deepEqual(await store.readFile(sha256(content)), content);
        assert.deepEqual((await store.verify()).strays, []);
      });

      it('a 200 MB streamed put does not hold the blob in memory', async () => {
        const chunk = 1024 * 1024;
        const total = 200;
        const seed = randomBytes(chunk);
        const expected = createHash('sha256');
        async function* lazy(): AsyncIterable<Uint8Array> {
          for (let i = 0; i < total; i++) {
            const part = Buffer.from(seed); // a fresh buffer each time, as a real source gives
            part.writeUInt32BE(i, 0);
            expected.update(part);
            yield part;
          }
        }
        const before = memory();
        let peak = before;
        const sampler = setInterval(() => {
          peak = Math.max(peak, memory());
        }, 5);
        try {
          const result = await store.put(lazy());
          assert.equal(result.size, total * chunk);
          assert.equal(result.hash, expected.digest('hex'));
        } finally {
          clearInterval(sampler);
        }
        peak = Math.max(peak, memory());
        const grownMb = (peak - before) / (1024 * 1024);
        assert.ok(grownMb < 50, `memory grew by ${grownMb.toFixed(1)} MB while storing 200 MB`);
        assert.deepEqual(await store.stat((await collect(store.list()))[0]!.hash), { size: total * chunk });
      });
    });

    describe('delete and list', () => {
      it('delete removes a blob and reports whether it was there; a later put creates it again', async () => {
        const content = randomBytes(500);
        const { hash } = await store.put(content);
        assert.equal(await store.delete(hash), true);
        assert.equal(await store.has(hash), false);
        assert.equal(await store.delete(hash), false);
        assert.deepEqual(await collect(store.list()), []);
        assert.equal((await store.put(content)).created, true);
        assert.deepEqual(await store.readFile(hash), content);
      });

      it('list yields every blob once with its size, in ascending hash order', async () => {
        const contents = Array.from({ length: 20 }, (_, i) => randomBytes(i * 7));
        for (const c of contents) await store.put(c);
        const expected = contents.map((c) => ({ hash: sha256(c), size: c.length })).sort((a, b) => (a.hash < b.hash ? -1 : 1));
        assert.deepEqual(await collect(store.list()), expected);
      });
    });

    describe('verify', () => {
      it('a healthy store verifies clean, checking every blob', async () => {
        for (let i = 0; i < 5; i++) await store.put(randomBytes(1000 + i));
        assert.deepEqual(await store.verify(), { checked: 5, corrupt: [], strays: [] });
      });

      it('verify names exactly the corrupted blob with the hash its bytes now have', { skip: skipReason(hooks.corrupt, 'corrupt') }, async () => {
        const good = await store.put(randomBytes(4000));
        const bad = await store.put(randomBytes(4000));
        await hooks.corrupt!(store, bad.hash);
        const now = await collectBytes(await store.open(bad.hash));
        const result = await store.verify();
        assert.equal(result.checked, 2);
        assert.deepEqual(result.corrupt, [{ hash: bad.hash, actualHash: sha256(now), size: now.length }]);
        assert.deepEqual(result.strays, []);
        assert.notEqual(good.hash, bad.hash);
      });

      it('verify reports a leftover temp file as a stray', { skip: skipReason(hooks.leaveTemp, 'leaveTemp') }, async () => {
        await store.put(randomBytes(10));
        const stray = await hooks.leaveTemp!(store);
        assert.deepEqual(await store.verify(), { checked: 1, corrupt: [], strays: [stray] });
      });
    });

    describe('gc', () => {
      const later = () => Date.now() + HOUR;

      it('deletes exactly the unreferenced blobs older than the grace period and keeps referenced ones', async () => {
        const [a, b, c] = [randomBytes(100), randomBytes(200), randomBytes(300)];
        const ra = await store.put(a);
        await store.put(b);
        await store.put(c);
        const result = await store.gc((hash) => hash === ra.hash, { now: later });
        assert.deepEqual(result, { scanned: 3, deleted: 2, freedBytes: 500, kept: 1, tempFilesRemoved: 0 });
        assert.deepEqual(await collect(store.list()), [{ hash: ra.hash, size: 100 }]);
      });

      it('accepts an async isLive', async () => {
        const keep = await store.put(randomBytes(10));
        await store.put(randomBytes(10));
        const result = await store.gc(async (hash) => hash === keep.hash, { now: later });
        assert.equal(result.deleted, 1);
        assert.deepEqual(
          (await collect(store.list())).map((b) => b.hash),
          [keep.hash],
        );
      });

      it('keeps unreferenced blobs younger than the grace period', async () => {
        const { hash } = await store.put(randomBytes(10));
        const result = await store.gc(() => false);
        assert.deepEqual(result, { scanned: 1, deleted: 0, freedBytes: 0, kept: 1, tempFilesRemoved: 0 });
        assert.equal(await store.has(hash), true);
        assert.equal((await store.gc(() => false, { graceMs: HOUR * 2, now: later })).deleted, 0);
      });

      it('keeps blobs pinned by a lease until it is released', async () => {
        const lease = store.lease();
        const written = await store.put(randomBytes(10), { lease });
        const reused = await store.put(randomBytes(20));
        await lease.pin([reused.hash]);
        assert.deepEqual([...lease.hashes].sort(), [written.hash, reused.hash].sort());
        assert.equal((await store.gc(() => false, { now: later })).deleted, 0);
        assert.equal(await store.has(written.hash), true);
        assert.equal(await store.has(reused.hash), true);
        lease.release();
        lease.release();
        assert.equal((await store.gc(() => false, { now: later })).deleted, 2);
      });

      it('lease.pin of a blob that is not stored throws BLOB_NOT_FOUND naming it', async () => {
        const stored = await store.put(randomBytes(10));
        const missing = sha256(randomBytes(10));
        const lease = store.lease();
        await rejectsWithCode(lease.pin([stored.hash, missing]), 'BLOB_NOT_FOUND', { hashes: [missing] });
        lease.release();
      });

      it('a writer that leases and re-puts a blob while gc is deciding on it never loses the blob', async () => {
        const content = randomBytes(1000);
        const { hash } = await store.put(content);
        let decide!: (live: boolean) => void;
        let asked!: () => void;
        const wasAsked = new Promise<void>((resolve) => (asked = resolve));
        const sweep = store.gc(
          () => {
            asked();
            return new Promise<boolean>((resolve) => (decide = resolve));
          },
          { now: later },
        );
        await wasAsked;
        const lease = store.lease();
        const put = await store.put(content, { lease });
        assert.equal(put.created, false);
        decide(false); // the snapshot record is not committed yet, so the mark says "not live"
        assert.equal((await sweep).deleted, 0);
        assert.deepEqual(await store.readFile(hash), content);
        lease.release();
      });

      it('never touches the temp file of a put still running, however old the clock says it is', async () => {
        let resume!: () => void;
        let started!: () => void;
        const wasStarted = new Promise<void>((resolve) => (started = resolve));
        const content = randomBytes(10_000);
        const slow = (async function* () {
          yield content.subarray(0, 5000);
          started();
          await new Promise<void>((resolve) => (resume = resolve));
          yield content.subarray(5000);
        })();
        const put = store.put(slow);
        await wasStarted;
        await new Promise((resolve) => setTimeout(resolve, 20));
        const swept = await store.gc(() => false, { now: later });
        assert.equal(swept.tempFilesRemoved, 0);
        assert.deepEqual((await store.verify()).strays, []);
        resume();
        assert.equal((await put).created, true);
        assert.deepEqual(await store.readFile(sha256(content)), content);
      });

      it('removes temp leftovers older than the grace period and keeps younger ones', { skip: skipReason(hooks.leaveTemp, 'leaveTemp') }, async () => {
        const stray = await hooks.leaveTemp!(store);
        assert.equal((await store.gc(() => false)).tempFilesRemoved, 0);
        assert.deepEqual((await store.verify()).strays, [stray]);
        assert.equal((await store.gc(() => false, { now: later })).tempFilesRemoved, 1);
        assert.deepEqual((await store.verify()).strays, []);
      });

      it('lease.pinKnown pins at once without checking, and gc keeps a pinned unreferenced blob', async () => {
        const { hash } = await store.put(randomBytes(10));
        const unknown = sha256(randomBytes(10));
        const lease = store.lease();
        lease.pinKnown([hash, unknown]); // synchronous; an absent blob is the caller's claim, not checked
        assert.deepEqual([...lease.hashes].sort(), [hash, unknown].sort());
        assert.equal((await store.gc(() => false, { now: later })).deleted, 0);
        assert.equal(await store.has(hash), true);
        lease.release();
        assert.equal((await store.gc(() => false, { now: later })).deleted, 1);
      });

      it('lease.pinKnown refuses a malformed hash with INVALID_HASH before pinning any, and a released lease', () => {
        const lease = store.lease();
        const good = sha256(Buffer.from('x'));
        assert.throws(
          () => lease.pinKnown([good, 'nope']),
          (err: unknown) => isFaasError(err) && err.code === 'INVALID_HASH',
        );
        assert.equal(lease.hashes.size, 0);
        lease.release();
        assert.throws(() => lease.pinKnown([good]));
      });
    });

    describe('removeLeftovers', () => {
      it('removes every temp leftover whatever its age, after which verify reports no strays', { skip: skipReason(hooks.leaveTemp, 'leaveTemp') }, async () => {
        await store.put(randomBytes(10));
        const strays = [await hooks.leaveTemp!(store), await hooks.leaveTemp!(store)];
        assert.deepEqual((await store.verify()).strays, strays.sort());
        assert.equal(await store.removeLeftovers(), 2);
        assert.deepEqual(await store.verify(), { checked: 1, corrupt: [], strays: [] });
        assert.equal(await store.removeLeftovers(), 0);
      });

      it('leaves the temporaries of an open batch alone', { skip: skipReason(hooks.leaveTemp, 'leaveTemp') }, async () => {
        const lease = store.lease();
        const batch = store.batch({ lease });
        const small = randomBytes(1000);
        const large = randomBytes(3 * 1024 * 1024);
        await batch.put(small);
        await batch.put(Readable.from(chunked(large, 64 * 1024)));
        await hooks.leaveTemp!(store);
        assert.equal(await store.removeLeftovers(), 1);
        assert.deepEqual(await batch.commit(), { created: 2, createdBytes: small.length + large.length });
        await assertStored(store, small);
        await assertStored(store, large);
        assert.deepEqual(await store.verify(), { checked: 2, corrupt: [], strays: [] });
        lease.release();
      });
    });

    describe('batch', () => {
      const later = () => Date.now() + HOUR;

      it('puts are invisible to the store until commit, which publishes them all and counts them', async () => {
        const lease = store.lease();
        const batch = store.batch({ lease });
        const contents = [Buffer.alloc(0), randomBytes(1000), randomBytes(300_000), randomBytes(2 * 1024 * 1024 + 1)];
        const kinds = sourceKinds();
        const results = [];
        for (const [i, content] of contents.entries()) results.push(await batch.put(kinds[i % kinds.length]![1](content)));
        assert.deepEqual(
          results,
          contents.map((c) => ({ hash: sha256(c), size: c.length, created: true })),
        );
        assert.deepEqual([...lease.hashes].sort(), contents.map(sha256).sort());
        for (const content of contents) {
          const hash = sha256(content);
          assert.equal(await batch.has(hash), true, 'pending is visible to the batch');
          assert.equal(await store.has(hash), false, 'pending is not visible to the store');
          assert.equal(await store.stat(hash), undefined);
          await rejectsWithCode(store.open(hash), 'BLOB_NOT_FOUND', { hash });
        }
        assert.deepEqual(await collect(store.list()), []);
        assert.deepEqual(await store.verify(), { checked: 0, corrupt: [], strays: [] }, 'pending temporaries are not strays');

        const total = contents.reduce((n, c) => n + c.length, 0);
        assert.deepEqual(await batch.commit(), { created: contents.length, createdBytes: total });
        for (const content of contents) await assertStored(store, content);
        assert.deepEqual(await store.verify(), { checked: contents.length, corrupt: [], strays: [] });
        lease.release();
      });

      it('has is true for stored and pending blobs, false otherwise, and refuses a malformed hash', async () => {
        const stored = await store.put(randomBytes(100));
        const lease = store.lease();
        const batch = store.batch({ lease });
        const pending = await batch.put(randomBytes(100));
        assert.equal(await batch.has(stored.hash), true);
        assert.equal(await batch.has(pending.hash), true);
        assert.equal(await batch.has(sha256(randomBytes(5))), false);
        await rejectsWithCode(batch.has('A'.repeat(64)), 'INVALID_HASH');
        await batch.abort();
        lease.release();
      });

      it('content stored already is not created again, and is pinned', async () => {
        const content = randomBytes(5000);
        const { hash } = await store.put(content);
        const lease = store.lease();
        const batch = store.batch({ lease });
        assert.deepEqual(await batch.put(Readable.from(chunked(content, 1000))), { hash, size: content.length, created: false });
        assert.deepEqual([...lease.hashes], [hash]);
        assert.deepEqual(await batch.commit(), { created: 0, createdBytes: 0 });
        assert.equal((await store.gc(() => false, { now: later })).deleted, 0);
        lease.release();
      });

      for (const size of [10_000, 3 * 1024 * 1024]) {
        it(`duplicate content in one batch (${size} bytes, sequential and concurrent) is created once`, async () => {
          const content = randomBytes(size);
          const lease = store.lease();
          const batch = store.batch({ lease });
          const first = await batch.put(content);
          const second = await batch.put(Readable.from(chunked(content, 4096)));
          const more = await Promise.all([batch.put(content), batch.put(Readable.from(chunked(content, 65_536)))]);
          assert.equal(first.created, true);
          assert.deepEqual(
            [second, ...more].map((r) => r.created),
            [false, false, false],
          );
          assert.ok([first, second, ...more].every((r) => r.hash === sha256(content) && r.size === size));
          const other = randomBytes(size);
          const concurrent = await Promise.all(Array.from({ length: 4 }, () => batch.put(Readable.from(chunked(other, 8192)))));
          assert.equal(concurrent.filter((r) => r.created).length, 1);
          assert.deepEqual(await batch.commit(), { created: 2, createdBytes: 2 * size });
          await assertStored(store, content);
          await assertStored(store, other);
          assert.deepEqual(await store.verify(), { checked: 2, corrupt: [], strays: [] });
          lease.release();
        });
      }

      it('two batches with the same content both commit, and exactly one commit counts it created', async () => {
        const content = randomBytes(50_000);
        const [la, lb] = [store.lease(), store.lease()];
        const [a, b] = [store.batch({ lease: la }), store.batch({ lease: lb })];
        assert.equal((await a.put(content)).created, true);
        assert.equal((await b.put(content)).created, true, 'a forecast: neither is stored yet');
        const results = await Promise.all([a.commit(), b.commit()]);
        assert.deepEqual(
          results.map((r) => r.created).sort(),
          [0, 1],
        );
        assert.equal(
          results.reduce((n, r) => n + r.createdBytes, 0),
          content.length,
        );
        await assertStored(store, content);
        assert.deepEqual(await store.verify(), { checked: 1, corrupt: [], strays: [] });
        la.release();
        lb.release();
      });

      it('a plain put of content pending in a batch creates it, and the commit then counts it not created', async () => {
        const content = randomBytes(20_000);
        const lease = store.lease();
        const batch = store.batch({ lease });
        assert.equal((await batch.put(content)).created, true);
        assert.equal((await store.put(content)).created, true);
        assert.deepEqual(await batch.commit(), { created: 0, createdBytes: 0 });
        await assertStored(store, content);
        lease.release();
      });

      it('abort removes what is pending: nothing becomes visible, and the batch is finished', async () => {
        const lease = store.lease();
        const batch = store.batch({ lease });
        const hashes = [];
        for (const size of [0, 100, 400_000]) hashes.push((await batch.put(randomBytes(size))).hash);
        await batch.abort();
        for (const hash of hashes) {
          assert.equal(await store.has(hash), false);
          assert.equal(await batch.has(hash), false);
        }
        assert.deepEqual(await collect(store.list()), []);
        assert.deepEqual(await store.verify(), { checked: 0, corrupt: [], strays: [] });
        assert.equal(await store.removeLeftovers(), 0, 'abort left no temporaries');
        await assert.rejects(batch.put(randomBytes(10)));
        await assert.rejects(batch.commit());
        await batch.abort();
        lease.release();
      });

      it('commit is once: put and commit afterwards throw, abort afterwards changes nothing', async () => {
        const lease = store.lease();
        const batch = store.batch({ lease });
        const content = randomBytes(100);
        await batch.put(content);
        assert.deepEqual(await batch.commit(), { created: 1, createdBytes: 100 });
        await assert.rejects(batch.put(randomBytes(10)));
        await assert.rejects(batch.commit());
        await batch.abort();
        await assertStored(store, content);
        assert.deepEqual(await collect(store.list()), [{ hash: sha256(content), size: 100 }]);
        lease.release();
      });

      it('an empty batch commits nothing', async () => {
        const lease = store.lease();
        assert.deepEqual(await store.batch({ lease }).commit(), { created: 0, createdBytes: 0 });
        lease.release();
      });

      it('commit includes puts still running when it is called', async () => {
        const lease = store.lease();
        const batch = store.batch({ lease });
        const content = randomBytes(600_000);
        let resume!: () => void;
        let started!: () => void;
        const wasStarted = new Promise<void>((resolve) => (started = resolve));
        const slow = (async function* () {
          yield content.subarray(0, 300_000);
          started();
          await new Promise<void>((resolve) => (resume = resolve));
          yield content.subarray(300_000);
        })();
        const put = batch.put(slow);
        await wasStarted;
        const commit = batch.commit();
        await assert.rejects(batch.put(randomBytes(10)), 'no new puts once committing');
        await new Promise((resolve) => setTimeout(resolve, 10));
        resume();
        assert.equal((await put).created, true);
        assert.deepEqual(await commit, { created: 1, createdBytes: content.length });
        await assertStored(store, content);
        lease.release();
      });

      it('gc during an open batch removes neither its temporaries nor, while the lease is held, its committed blobs', async () => {
        const lease = store.lease();
        const batch = store.batch({ lease });
        const contents = [randomBytes(100), randomBytes(1_000_000)];
        for (const content of contents) await batch.put(content);
        const during = await store.gc(() => false, { now: later });
        assert.equal(during.tempFilesRemoved, 0);
        assert.deepEqual((await store.verify()).strays, []);
        assert.deepEqual(await batch.commit(), { created: 2, createdBytes: 1_000_100 });
        assert.equal((await store.gc(() => false, { now: later })).deleted, 0);
        for (const content of contents) await assertStored(store, content);
        lease.release();
        assert.equal((await store.gc(() => false, { now: later })).deleted, 2);
      });

      for (const size of [1000, 1_000_000]) {
        it(`an expectedHash that differs (${size} bytes) throws BLOB_HASH_MISMATCH and stores nothing`, async () => {
          const lease = store.lease();
          const batch = store.batch({ lease });
          const content = randomBytes(size);
          const expected = sha256(Buffer.from('something else'));
          await rejectsWithCode(batch.put(Readable.from(chunked(content, 65_536)), { expectedHash: expected }), 'BLOB_HASH_MISMATCH', {
            expected,
            actual: sha256(content),
            size,
          });
          await rejectsWithCode(batch.put(content, { expectedHash: 'X' }), 'INVALID_HASH');
          assert.equal(await batch.has(sha256(content)), false);
          assert.equal((await batch.put(content, { expectedHash: sha256(content) })).created, true, 'the batch is still usable');
          assert.deepEqual(await batch.commit(), { created: 1, createdBytes: size });
          assert.deepEqual(await collect(store.list()), [{ hash: sha256(content), size }]);
          assert.equal(await store.has(expected), false);
          assert.deepEqual(await store.verify(), { checked: 1, corrupt: [], strays: [] });
          lease.release();
        });
      }

      it('a source that fails rejects its put with its error; the rest of the batch commits', async () => {
        const lease = store.lease();
        const batch = store.batch({ lease });
        const good = randomBytes(700);
        await batch.put(good);
        for (const first of [100, 400_000]) {
          const failing = (async function* () {
            yield randomBytes(first);
            yield randomBytes(64 * 1024);
            throw new Error('source broke');
          })();
          await assert.rejects(batch.put(failing), /source broke/);
        }
        assert.deepEqual(await batch.commit(), { created: 1, createdBytes: 700 });
        assert.deepEqual(await collect(store.list()), [{ hash: sha256(good), size: 700 }]);
        assert.deepEqual(await store.verify(), { checked: 1, corrupt: [], strays: [] });
        lease.release();
      });

      it('a released lease makes put throw and keeps nothing', async () => {
        const lease = store.lease();
        const batch = store.batch({ lease });
        lease.release();
        await assert.rejects(batch.put(randomBytes(10)));
        await batch.abort();
        assert.deepEqual(await store.verify(), { checked: 0, corrupt: [], strays: [] });
      });

      it('a 64 MiB streamed batch put does not hold the blob in memory', async () => {
        const chunk = 1024 * 1024;
        const total = 64;
        // One buffer, rewritten for every chunk: no garbage for the GC to lag behind on (so memory
        // growth means retention), and a store that kept chunks by reference would hash wrong.
        const part = randomBytes(chunk);
        const expected = createHash('sha256');
        async function* lazy(): AsyncIterable<Uint8Array> {
          for (let i = 0; i < total; i++) {
            part.writeUInt32BE(i, 0);
            expected.update(part);
            yield part;
          }
        }
        const lease = store.lease();
        const batch = store.batch({ lease });
        const before = memory();
        let peak = before;
        const sampler = setInterval(() => {
          peak = Math.max(peak, memory());
        }, 5);
        try {
          const result = await batch.put(lazy());
          assert.deepEqual(result, { hash: expected.digest('hex'), size: total * chunk, created: true });
          assert.deepEqual(await batch.commit(), { created: 1, createdBytes: total * chunk });
          assert.deepEqual(await store.stat(result.hash), { size: total * chunk });
        } finally {
          clearInterval(sampler);
        }
        peak = Math.max(peak, memory());
        const grownMb = (peak - before) / (1024 * 1024);
        assert.ok(grownMb < 16, `memory grew by ${grownMb.toFixed(1)} MB while storing 64 MiB`);
        lease.release();
      });
    });
  });
}

function sourceKinds(): Array<[string, (content: Buffer) => Buffer | Readable | AsyncIterable<Uint8Array>]> {
  return [
    ['a Buffer', (content) => content],
    ['a Readable', (content) => Readable.from(chunked(content, 64 * 1024))],
    [
      'an async iterable',
      (content) =>
        (async function* () {
          yield* chunked(content, 100_000);
        })(),
    ],
  ];
}

function chunked(content: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < content.length; i += size) parts.push(content.subarray(i, i + size));
  return parts;
}

async function assertStored(store: BlobStore, content: Buffer): Promise<void> {
  const hash = sha256(content);
  assert.equal(await store.has(hash), true);
  assert.deepEqual(await store.stat(hash), { size: content.length });
  assert.ok((await store.readFile(hash)).equals(content), 'readFile returns the content');
  assert.ok((await collectBytes(await store.open(hash))).equals(content), 'open streams the content');
}

function sha256(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Off-heap memory (Buffers live there), which is what a buffered blob would grow. */
function memory(): number {
  const m = process.memoryUsage();
  return m.external;
}

function skipReason(hook: unknown, name: string): string | false {
  return hook === undefined ? `the backend provides no ${name} hook to damage its storage` : false;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function collectBytes(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function rejectsWithCode(promise: Promise<unknown>, code: string, details?: Record<string, unknown>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isFaasError(err), `expected a FaasError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (details !== undefined) assert.deepEqual(err.details, details);
    return true;
  });
}
