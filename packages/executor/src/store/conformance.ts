import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isFaasError } from '@faas/protocol';
import type { CachedResultRecord, ExecutionRecord, InstanceRecord, SessionRecord, SnapshotRecord, SshKeyRecord, Store } from './types.ts';

/**
 * The behaviour every Store backend must have. A backend's test file calls this once per
 * configuration; passing it is what admits the backend.
 *
 * @param name shown in the test names, e.g. `'sqlite :memory:'`.
 * @param open returns a new, empty store on every call; each test opens its own and closes it.
 * @example
 * runStoreConformance('sqlite :memory:', () => openSqliteStore({ path: ':memory:' }));
 */
export function runStoreConformance(name: string, open: () => Promise<Store>): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('instances', () => {
      it('insert then get returns every field unchanged, with nulls and empty maps', async () => {
        const record = instanceRecord();
        await store.instances.insert(record);
        assert.deepEqual(await store.instances.get(record.id), record);
      });

      it('insert then get keeps filled optional fields, unicode, fractional numbers and exact milliseconds', async () => {
        const record = instanceRecord({
          state: 'stopped',
          stateReason: 'executor_restart',
          envVars: { PATH: '/usr/bin:/bin', GREETING: 'héllo "wörld"\n\\ ✓' },
          limits: { memoryMb: 2048, cpuCores: 1.5, pidsMax: 4096 },
          metadata: { 'owner.name': 'Zoë 山田', emoji: '🚀👩‍💻', rtl: 'שלום', combining: 'é', 'with space': '' },
          createdAt: new Date('1969-12-31T23:59:59.999Z'),
          startedAt: at(1),
          stoppedAt: at(86_400_001),
          startDurationMs: 0,
        });
        await store.instances.insert(record);
        const got = await store.instances.get(record.id);
        assert.deepEqual(got, record);
        assert.equal(got?.stoppedAt?.getTime(), record.stoppedAt?.getTime());
      });

      it('get of an unknown id returns undefined', async () => {
        assert.equal(await store.instances.get(freshId('missing')), undefined);
      });

      it('insert of an existing id throws ID_CONFLICT and keeps the first record', async () => {
        const first = instanceRecord();
        await store.instances.insert(first);
        const clash = { ...first, env: 'other', hostUid: first.hostUid + 1 };
        await rejectsWithCode(store.instances.insert(clash), 'ID_CONFLICT', { id: first.id });
        assert.deepEqual(await store.instances.get(first.id), first);
      });

      it('update returns the merged record and persists it', async () => {
        const record = instanceRecord({ state: 'starting' });
        await store.instances.insert(record);
        const patch = { state: 'running', startedAt: at(1500), startDurationMs: 1500, metadata: { k: 'v' } } as const;
        const updated = await store.instances.update(record.id, patch);
        assert.deepEqual(updated, { ...record, ...patch });
        assert.deepEqual(await store.instances.get(record.id), updated);
      });

      it('update sets nullable fields to null and leaves fields whose patch value is undefined', async () => {
        const record = instanceRecord({ state: 'failed', stateReason: 'start_failed', startedAt: at(5), startDurationMs: 5 });
        await store.instances.insert(record);
        const updated = await store.instances.update(record.id, { stateReason: null, startedAt: null, env: undefined });
        assert.deepEqual(updated, { ...record, stateReason: null, startedAt: null });
      });

      it('update with an empty patch returns the record unchanged', async () => {
        const record = instanceRecord();
        await store.instances.insert(record);
        assert.deepEqual(await store.instances.update(record.id, {}), record);
      });

      it('update of an unknown id throws INSTANCE_NOT_FOUND, also for an empty patch', async () => {
        const id = freshId('missing');
        await rejectsWithCode(store.instances.update(id, { state: 'deleted' }), 'INSTANCE_NOT_FOUND');
        await rejectsWithCode(store.instances.update(id, {}), 'INSTANCE_NOT_FOUND');
        assert.equal(await store.instances.get(id), undefined);
      });

      it('list returns newest createdAt first, ties broken by id descending', async () => {
        const old = instanceRecord({ id: 'i-c', createdAt: at(0) });
        const tieA = instanceRecord({ id: 'i-a', createdAt: at(10) });
        const tieB = instanceRecord({ id: 'i-b', createdAt: at(10) });
        const newest = instanceRecord({ id: 'i-0', createdAt: at(20) });
        for (const r of [tieA, old, newest, tieB]) await store.instances.insert(r);
        assert.deepEqual(await store.instances.list(), [newest, tieB, tieA, old]);
      });

      it('list filters by states and by nodeId, together and apart', async () => {
        const running = instanceRecord({ state: 'running', nodeId: 'n1', createdAt: at(3) });
        const stopped = instanceRecord({ state: 'stopped', nodeId: 'n1', createdAt: at(2) });
        const deleted = instanceRecord({ state: 'deleted', nodeId: 'n2', createdAt: at(1) });
        for (const r of [running, stopped, deleted]) await store.instances.insert(r);
        assert.deepEqual(await store.instances.list({ states: ['running', 'deleted'] }), [running, deleted]);
        assert.deepEqual(await store.instances.list({ nodeId: 'n1' }), [running, stopped]);
        assert.deepEqual(await store.instances.list({ nodeId: 'n1', states: ['stopped'] }), [stopped]);
        assert.deepEqual(await store.instances.list({ nodeId: 'n3' }), []);
      });

      it('list with an empty states filter matches nothing', async () => {
        await store.instances.insert(instanceRecord());
        assert.deepEqual(await store.instances.list({ states: [] }), []);
      });

      it('list honours limit, keeping the newest, and returns at most 1000 by default', async () => {
        const records = Array.from({ length: 1001 }, (_, i) => instanceRecord({ createdAt: at(i) }));
        await store.withTransaction(async (tx) => {
          for (const r of records) await tx.instances.insert(r);
        });
        assert.deepEqual(await store.instances.list({ limit: 2 }), [records[1000], records[999]]);
        assert.deepEqual(await store.instances.list({ limit: 0 }), []);
        const all = await store.instances.list();
        assert.equal(all.length, 1000);
        assert.equal(all.at(-1)?.id, records[1]?.id);
      });

      it('usedHostUids returns the uids of every instance that is not deleted', async () => {
        const states = ['starting', 'running', 'stopped', 'failed', 'deleted'] as const;
        const records = states.map((state, i) => instanceRecord({ state, hostUid: 200_000 + i }));
        for (const r of records) await store.instances.insert(r);
        assert.deepEqual(sorted(await store.instances.usedHostUids()), [200_000, 200_001, 200_002, 200_003]);
        await store.instances.update(records[0]!.id, { state: 'deleted' });
        assert.deepEqual(sorted(await store.instances.usedHostUids()), [200_001, 200_002, 200_003]);
      });
    });

    describe('executions', () => {
      it('insert then get returns every field unchanged, with nulls and empty lists', async () => {
        const record = executionRecord((await seedInstance(store)).id, { envVarNames: [] });
        await store.executions.insert(record);
        assert.deepEqual(await store.executions.get(record.id), record);
      });

      it('insert then get keeps a finished execution: exit fields, booleans, large counts, fractions', async () => {
        const record = executionRecord((await seedInstance(store)).id, {
          ephemeral: true,
          status: 'completed',
          command: ['sh', '-c', 'echo "ünï" && exit 3', ''],
          envVarNames: ['PATH', 'SECRET_TOKEN'],
          exitCode: -1,
          exitReason: 'signaled',
          signal: 'SIGKILL',
          stdoutBytes: 2 ** 40,
          stderrBytes: 0,
          outputTruncated: true,
          progress: 0.25,
          lastSeq: 123_456,
          finishedAt: at(61_001),
          durationMs: 61_000,
        });
        await store.executions.insert(record);
        assert.deepEqual(await store.executions.get(record.id), record);
      });

      it('get of an unknown id returns undefined', async () => {
        assert.equal(await store.executions.get(freshId('missing')), undefined);
      });

      it('insert of an existing id throws ID_CONFLICT and keeps the first record', async () => {
        const first = executionRecord((await seedInstance(store)).id);
        await store.executions.insert(first);
        await rejectsWithCode(store.executions.insert({ ...first, requestHash: 'other' }), 'ID_CONFLICT', { id: first.id });
        assert.deepEqual(await store.executions.get(first.id), first);
      });

      it('insert for an instance id that does not exist throws INSTANCE_NOT_FOUND', async () => {
        const record = executionRecord(freshId('no-such-instance'));
        await rejectsWithCode(store.executions.insert(record), 'INSTANCE_NOT_FOUND', { instance_id: record.instanceId });
        assert.equal(await store.executions.get(record.id), undefined);
      });

      it('update returns the merged record and persists it', async () => {
        const record = executionRecord((await seedInstance(store)).id);
        await store.executions.insert(record);
        const finished = { status: 'completed', exitCode: 0, exitReason: 'exited', finishedAt: at(750), durationMs: 750 } as const;
        const patch = { ...finished, stdoutBytes: 12, outputTruncated: true, lastSeq: 4 };
        const updated = await store.executions.update(record.id, patch);
        assert.deepEqual(updated, { ...record, ...patch });
        assert.deepEqual(await store.executions.get(record.id), updated);
        assert.deepEqual(await store.executions.update(record.id, { progress: null, signal: undefined }), { ...updated, progress: null });
      });

      it('update of an unknown id throws EXECUTION_NOT_FOUND, also for an empty patch', async () => {
        const id = freshId('missing');
        await rejectsWithCode(store.executions.update(id, { status: 'interrupted' }), 'EXECUTION_NOT_FOUND');
        await rejectsWithCode(store.executions.update(id, {}), 'EXECUTION_NOT_FOUND');
      });

      it('list returns newest startedAt first, ties broken by id descending', async () => {
        const instanceId = (await seedInstance(store)).id;
        const old = executionRecord(instanceId, { id: 'e-c', startedAt: at(0) });
        const tieA = executionRecord(instanceId, { id: 'e-a', startedAt: at(10) });
        const tieB = executionRecord(instanceId, { id: 'e-b', startedAt: at(10) });
        const newest = executionRecord(instanceId, { id: 'e-0', startedAt: at(20) });
        for (const r of [tieA, old, newest, tieB]) await store.executions.insert(r);
        assert.deepEqual(await store.executions.list(), [newest, tieB, tieA, old]);
      });

      it('list filters by instanceId and by statuses, together and apart', async () => {
        const one = (await seedInstance(store)).id;
        const two = (await seedInstance(store)).id;
        const a = executionRecord(one, { status: 'running', startedAt: at(4) });
        const b = executionRecord(one, { status: 'completed', startedAt: at(3) });
        const c = executionRecord(two, { status: 'interrupted', startedAt: at(2) });
        const d = executionRecord(two, { status: 'completed', startedAt: at(1) });
        for (const r of [a, b, c, d]) await store.executions.insert(r);
        assert.deepEqual(await store.executions.list({ instanceId: one }), [a, b]);
        assert.deepEqual(await store.executions.list({ statuses: ['completed', 'interrupted'] }), [b, c, d]);
        assert.deepEqual(await store.executions.list({ instanceId: two, statuses: ['completed'] }), [d]);
        assert.deepEqual(await store.executions.list({ statuses: [] }), []);
        assert.deepEqual(await store.executions.list({ instanceId: freshId('none') }), []);
      });

      it('list honours limit, keeping the newest, and returns at most 1000 by default', async () => {
        const instanceId = (await seedInstance(store)).id;
        const records = Array.from({ length: 1001 }, (_, i) => executionRecord(instanceId, { startedAt: at(i) }));
        await store.withTransaction(async (tx) => {
          for (const r of records) await tx.executions.insert(r);
        });
        assert.deepEqual(await store.executions.list({ instanceId, limit: 2 }), [records[1000], records[999]]);
        const all = await store.executions.list();
        assert.equal(all.length, 1000);
        assert.equal(all.at(-1)?.id, records[1]?.id);
      });
    });

    describe('snapshots', () => {
      it('insert then get returns every field unchanged', async () => {
        const record = snapshotRecord({ memoryHash: 'd'.repeat(64), sourceExecutionId: 'exec-1', deterministic: false });
        await store.snapshots.insert(record);
        assert.deepEqual(await store.snapshots.get(record.id), record);
        assert.equal(await store.snapshots.get('snap-missing'), undefined);
      });

      it('a duplicate id is ID_CONFLICT; an unknown parent is SNAPSHOT_NOT_FOUND', async () => {
        const record = snapshotRecord();
        await store.snapshots.insert(record);
        await rejectsWithCode(store.snapshots.insert({ ...record, contentHash: 'e'.repeat(64) }), 'ID_CONFLICT');
        await rejectsWithCode(store.snapshots.insert(snapshotRecord({ parentId: 'snap-none', parentHash: 'f'.repeat(64) })), 'SNAPSHOT_NOT_FOUND');
      });

      it('getByContentHash returns the oldest snapshot with that hash', async () => {
        const hash = '1'.repeat(64);
        const newer = snapshotRecord({ contentHash: hash, createdAt: at(50) });
        const older = snapshotRecord({ contentHash: hash, createdAt: at(10) });
        await store.snapshots.insert(newer);
        await store.snapshots.insert(older);
        assert.equal((await store.snapshots.getByContentHash(hash))?.id, older.id);
        assert.equal(await store.snapshots.getByContentHash('2'.repeat(64)), undefined);
      });

      it('list filters by parent (null: roots) and source instance, newest first; all() is oldest first', async () => {
        const root = snapshotRecord({ createdAt: at(1), sourceInstanceId: 'inst-a' });
        const c1 = snapshotRecord({ parentId: root.id, parentHash: root.contentHash, createdAt: at(2), sourceInstanceId: 'inst-b' });
        const c2 = snapshotRecord({ parentId: root.id, parentHash: root.contentHash, createdAt: at(3), sourceInstanceId: 'inst-a' });
        for (const r of [root, c1, c2]) await store.snapshots.insert(r);
        assert.deepEqual((await store.snapshots.list({ parentId: root.id })).map((r) => r.id), [c2.id, c1.id]);
        assert.deepEqual((await store.snapshots.list({ parentId: null })).map((r) => r.id), [root.id]);
        assert.deepEqual((await store.snapshots.list({ sourceInstanceId: 'inst-a' })).map((r) => r.id), [c2.id, root.id]);
        assert.deepEqual((await store.snapshots.list({ limit: 1 })).map((r) => r.id), [c2.id]);
        assert.deepEqual((await store.snapshots.all()).map((r) => r.id), [root.id, c1.id, c2.id]);
      });

      it('delete removes a parent together with its children, and refuses a parent alone', async () => {
        const root = snapshotRecord();
        const child = snapshotRecord({ parentId: root.id, parentHash: root.contentHash });
        await store.snapshots.insert(root);
        await store.snapshots.insert(child);
        await assert.rejects(store.snapshots.delete([root.id]));
        assert.ok(await store.snapshots.get(root.id), 'a refused delete removed the parent');
        assert.equal(await store.snapshots.delete([child.id, root.id, 'snap-none']), 2);
        assert.deepEqual(await store.snapshots.all(), []);
      });

      it('instances keep their source and last snapshot and list by source', async () => {
        const snap = snapshotRecord();
        await store.snapshots.insert(snap);
        const a = instanceRecord({ sourceSnapshotId: snap.id });
        const b = instanceRecord();
        await store.instances.insert(a);
        await store.instances.insert(b);
        assert.deepEqual(await store.instances.get(a.id), a);
        assert.deepEqual((await store.instances.list({ sourceSnapshotId: snap.id })).map((r) => r.id), [a.id]);
        const updated = await store.instances.update(b.id, { lastSnapshotId: snap.id });
        assert.equal(updated.lastSnapshotId, snap.id);
        assert.equal((await store.instances.update(b.id, { lastSnapshotId: null })).lastSnapshotId, null);
      });
    });

    describe('resultCache', () => {
      it('put then get returns every field unchanged; get of an unknown key is undefined', async () => {
        const record = cachedResult({ cacheKey: 'v1', result: JSON.stringify({ stdout: 'héllo 🚀\n' }), hits: 3 });
        await store.resultCache.put(record);
        assert.deepEqual(await store.resultCache.get(record.key), record);
        assert.equal(await store.resultCache.get(freshId('missing')), undefined);
        assert.equal(await store.resultCache.sizeOf(record.key), record.sizeBytes);
        assert.equal(await store.resultCache.sizeOf(freshId('missing')), undefined);
      });

      it('put replaces the entry with the same key', async () => {
        const first = cachedResult({ cacheKey: null });
        await store.resultCache.put(first);
        const second = { ...first, executionId: 'exec-2', result: '{"b":2}', sizeBytes: 7, createdAt: at(50), lastUsedAt: at(50), hits: 0 };
        await store.resultCache.put(second);
        assert.deepEqual(await store.resultCache.get(first.key), second);
        assert.deepEqual(await store.resultCache.totals(), { entries: 1, bytes: 7 });
      });

      it('touch sets last_used_at and counts a hit; an unknown key reports false', async () => {
        const record = cachedResult({ lastUsedAt: at(0), hits: 0 });
        await store.resultCache.put(record);
        assert.equal(await store.resultCache.touch(record.key, at(1000)), true);
        assert.equal(await store.resultCache.touch(record.key, at(2000)), true);
        assert.deepEqual(await store.resultCache.get(record.key), { ...record, lastUsedAt: at(2000), hits: 2 });
        assert.equal(await store.resultCache.touch(freshId('missing'), at(3000)), false);
      });

      it('totals counts entries and bytes, zero when empty', async () => {
        assert.deepEqual(await store.resultCache.totals(), { entries: 0, bytes: 0 });
        await store.resultCache.put(cachedResult({ sizeBytes: 100 }));
        await store.resultCache.put(cachedResult({ sizeBytes: 23 }));
        assert.deepEqual(await store.resultCache.totals(), { entries: 2, bytes: 123 });
      });

      it('oldestUsed lists least recently used first, honouring limit', async () => {
        const a = cachedResult({ key: 'k-a', lastUsedAt: at(30), sizeBytes: 1 });
        const b = cachedResult({ key: 'k-b', lastUsedAt: at(10), sizeBytes: 2 });
        const c = cachedResult({ key: 'k-c', lastUsedAt: at(20), sizeBytes: 3 });
        for (const r of [a, b, c]) await store.resultCache.put(r);
        assert.deepEqual(await store.resultCache.oldestUsed(10), [
          { key: 'k-b', sizeBytes: 2 },
          { key: 'k-c', sizeBytes: 3 },
          { key: 'k-a', sizeBytes: 1 },
        ]);
        await store.resultCache.touch('k-b', at(40));
        assert.deepEqual((await store.resultCache.oldestUsed(2)).map((e) => e.key), ['k-c', 'k-a']);
        assert.deepEqual(await store.resultCache.oldestUsed(0), []);
      });

      it('delete by all, cache key, env and age; conditions combine; an empty filter deletes nothing', async () => {
        const rows = [
          cachedResult({ env: 'python', cacheKey: 'v1', createdAt: at(0) }),
          cachedResult({ env: 'python', cacheKey: null, createdAt: at(100) }),
          cachedResult({ env: 'node', cacheKey: 'v1', createdAt: at(200) }),
          cachedResult({ env: 'node', cacheKey: 'v2', createdAt: at(300) }),
        ];
        for (const r of rows) await store.resultCache.put(r);
        assert.equal(await store.resultCache.delete({}), 0);
        assert.equal(await store.resultCache.delete({ env: 'node', cacheKey: 'v2' }), 1);
        assert.equal(await store.resultCache.delete({ cacheKey: 'v1' }), 2);
        assert.equal(await store.resultCache.delete({ olderThan: at(100) }), 0);
        assert.equal(await store.resultCache.delete({ olderThan: at(101) }), 1);
        assert.deepEqual(await store.resultCache.totals(), { entries: 0, bytes: 0 });
        for (const r of rows) await store.resultCache.put(r);
        assert.equal(await store.resultCache.delete({ env: 'python' }), 2);
        assert.equal(await store.resultCache.delete({ all: true }), 2);
        assert.equal((await store.resultCache.totals()).entries, 0);
      });

      it('deleteKeys deletes the listed keys (unknown ones ignored, many at once); deleteExpired by creation time', async () => {
        const many = Array.from({ length: 1200 }, (_, i) => cachedResult({ key: `k-${String(i).padStart(4, '0')}`, createdAt: at(i) }));
        await store.withTransaction(async (tx) => {
          for (const r of many) await tx.resultCache.put(r);
        });
        assert.equal(await store.resultCache.deleteKeys([]), 0);
        assert.equal(await store.resultCache.deleteKeys(['k-0000', 'nope']), 1);
        assert.equal(await store.resultCache.deleteKeys(many.slice(600).map((r) => r.key)), 600);
        assert.equal(await store.resultCache.deleteExpired(at(100)), 99);
        assert.equal((await store.resultCache.totals()).entries, 500);
        assert.equal((await store.resultCache.oldestUsed(1))[0]?.key, 'k-0100');
      });
    });

    describe('sshKeys', () => {
      it('insert then get returns every field unchanged; lists by instance and fingerprint newest first', async () => {
        const inst = await seedInstance(store);
        const a = sshKeyRecord(inst.id, { createdAt: at(0) });
        const b = sshKeyRecord(inst.id, { createdAt: at(10), rotatedFrom: a.id, revokedAt: at(20), revokeReason: 'rotated', byo: true, autoRotateBeforeMs: 5000, retiredAt: at(21), fingerprint: a.fingerprint });
        await store.sshKeys.insert(a);
        await store.sshKeys.insert(b);
        assert.deepEqual(await store.sshKeys.get(b.id), b);
        assert.equal(await store.sshKeys.get(freshId('key')), undefined);
        assert.deepEqual((await store.sshKeys.listByInstance(inst.id)).map((k) => k.id), [b.id, a.id]);
        assert.deepEqual((await store.sshKeys.listByFingerprint(a.fingerprint)).map((k) => k.id), [b.id, a.id]);
        assert.deepEqual(await store.sshKeys.listByFingerprint('SHA256:none'), []);
        assert.deepEqual((await store.sshKeys.listUnretired()).map((k) => k.id), [a.id]);
      });

      it('insert refuses a taken id (ID_CONFLICT) and an unknown instance (INSTANCE_NOT_FOUND)', async () => {
        const inst = await seedInstance(store);
        const key = sshKeyRecord(inst.id);
        await store.sshKeys.insert(key);
        await rejectsWithCode(store.sshKeys.insert(key), 'ID_CONFLICT');
        await rejectsWithCode(store.sshKeys.insert(sshKeyRecord('inst-missing')), 'INSTANCE_NOT_FOUND');
      });

      it('update sets only revocation and retirement fields; unknown id is SSH_KEY_NOT_FOUND', async () => {
        const inst = await seedInstance(store);
        const key = sshKeyRecord(inst.id);
        await store.sshKeys.insert(key);
        const revoked = await store.sshKeys.update(key.id, { revokedAt: at(5), revokeReason: 'revoked' });
        assert.deepEqual(revoked, { ...key, revokedAt: at(5), revokeReason: 'revoked' });
        assert.deepEqual(await store.sshKeys.update(key.id, { retiredAt: at(6) }), { ...revoked, retiredAt: at(6) });
        assert.deepEqual(await store.sshKeys.update(key.id, {}), { ...revoked, retiredAt: at(6) });
        await rejectsWithCode(store.sshKeys.update(freshId('key'), { retiredAt: at(1) }), 'SSH_KEY_NOT_FOUND');
      });

      it('audit entries get ascending seqs and page per instance with after and limit', async () => {
        const entry = (instanceId: string, event: 'issued' | 'login_failed', offset: number) => ({
          at: at(offset),
          instanceId,
          keyId: event === 'issued' ? 'key-1' : null,
          event,
          fingerprint: 'SHA256:f',
          clientAddress: event === 'issued' ? null : '127.0.0.1:40000',
          details: { reason: 'unknown_key', n: offset },
        });
        const s1 = await store.sshKeys.appendAudit(entry('inst-a', 'issued', 1));
        const s2 = await store.sshKeys.appendAudit(entry('inst-b', 'login_failed', 2));
        const s3 = await store.sshKeys.appendAudit(entry('inst-a', 'login_failed', 3));
        assert.ok(s1 < s2 && s2 < s3);
        assert.deepEqual(await store.sshKeys.listAudit('inst-a'), [
          { seq: s1, ...entry('inst-a', 'issued', 1) },
          { seq: s3, ...entry('inst-a', 'login_failed', 3) },
        ]);
        assert.deepEqual((await store.sshKeys.listAudit('inst-a', { after: s1 })).map((e) => e.seq), [s3]);
        assert.deepEqual((await store.sshKeys.listAudit('inst-a', { limit: 1 })).map((e) => e.seq), [s1]);
        assert.deepEqual(await store.sshKeys.listAudit('inst-none'), []);
      });
    });

    describe('sessions', () => {
      const session = (over: Partial<SessionRecord> = {}): SessionRecord => ({
        id: freshId('sess'),
        executionId: freshId('exec'),
        instanceId: freshId('inst'),
        ownsInstance: true,
        nodeId: 'node-a',
        state: 'running',
        stateReason: null,
        process: { command: ['sleep', '1'], workingDir: '/workspace', envVarNames: ['A'] },
        startedAt: at(1),
        deadline: at(5000),
        lastHeartbeat: at(2),
        maxDurationMs: 4999,
        heartbeatIntervalMs: null,
        idleTimeoutMs: 0,
        gracePeriodMs: 10_000,
        checkpointIntervalMs: 0,
        checkpoints: [],
        extendedCount: 0,
        maxExtensions: 1,
        autoExtend: false,
        exitCode: null,
        endedAt: null,
        ...over,
      });

      it('insert then get returns every field; found by any of its executions; lists by state and node', async () => {
        const s = session({ checkpoints: [{ snapshotId: 'snap-1', contentHash: 'c'.repeat(64), createdAt: at(3), sizeBytes: 7 }], heartbeatIntervalMs: 100 });
        await store.sessions.insert(s);
        assert.deepEqual(await store.sessions.get(s.id), s);
        assert.deepEqual(await store.sessions.getByExecution(s.executionId), s);
        await rejectsWithCode(store.sessions.insert(s), 'ID_CONFLICT');
        const next = freshId('exec');
        const updated = await store.sessions.update(s.id, { executionId: next, state: 'terminated', stateReason: 'executor_restart', endedAt: at(9) });
        assert.equal(updated.deadline.getTime(), s.deadline.getTime());
        assert.equal((await store.sessions.getByExecution(s.executionId))?.executionId, next, 'the earlier execution still names it');
        assert.equal((await store.sessions.getByExecution(next))?.id, s.id);
        const live = session({ nodeId: 'node-b' });
        await store.sessions.insert(live);
        assert.deepEqual((await store.sessions.list({ states: ['running'], nodeId: 'node-b' })).map((r) => r.id), [live.id]);
        assert.ok((await store.sessions.list({ states: ['terminated'] })).some((r) => r.id === s.id));
        await rejectsWithCode(store.sessions.update(freshId('sess'), { state: 'failed' }), 'SESSION_NOT_FOUND');
      });

      it('setHeartbeats writes many last_heartbeat values', async () => {
        const a = session();
        const b = session();
        await store.sessions.insert(a);
        await store.sessions.insert(b);
        await store.withTransaction((tx) => tx.sessions.setHeartbeats([{ id: a.id, at: at(10) }, { id: b.id, at: at(11) }]));
        assert.equal((await store.sessions.get(a.id))?.lastHeartbeat.getTime(), at(10).getTime());
        assert.equal((await store.sessions.get(b.id))?.lastHeartbeat.getTime(), at(11).getTime());
      });
    });

    describe('exposedPorts', () => {
      it('insert then get returns every field; lists by port; refuses a second exposure (PORT_ALREADY_EXPOSED) and an unknown instance', async () => {
        const inst = await seedInstance(store);
        const open = { instanceId: inst.id, port: 8080, tokenHash: null, createdAt: at(1) };
        const guarded = { instanceId: inst.id, port: 3000, tokenHash: 'a'.repeat(64), createdAt: at(2) };
        await store.exposedPorts.insert(open);
        await store.exposedPorts.insert(guarded);
        assert.deepEqual(await store.exposedPorts.get(inst.id, 3000), guarded);
        assert.equal(await store.exposedPorts.get(inst.id, 1), undefined);
        assert.deepEqual(await store.exposedPorts.listByInstance(inst.id), [guarded, open]);
        await rejectsWithCode(store.exposedPorts.insert({ ...open, tokenHash: 'b'.repeat(64) }), 'PORT_ALREADY_EXPOSED', { instance_id: inst.id, port: 8080 });
        await rejectsWithCode(store.exposedPorts.insert({ ...open, instanceId: freshId('missing') }), 'INSTANCE_NOT_FOUND');
      });

      it('delete, deleteByInstance and deleteOfDeletedInstances remove what they say and count it', async () => {
        const a = await seedInstance(store);
        const b = await seedInstance(store);
        for (const [inst, port] of [[a, 1], [a, 2], [b, 1]] as const) await store.exposedPorts.insert({ instanceId: inst.id, port, tokenHash: null, createdAt: at(port) });
        assert.equal(await store.exposedPorts.delete(a.id, 1), true);
        assert.equal(await store.exposedPorts.delete(a.id, 1), false);
        assert.equal(await store.exposedPorts.deleteByInstance(a.id), 1);
        assert.deepEqual(await store.exposedPorts.listByInstance(a.id), []);
        assert.equal(await store.exposedPorts.deleteOfDeletedInstances(), 0);
        await store.instances.update(b.id, { state: 'deleted' });
        assert.equal(await store.exposedPorts.deleteOfDeletedInstances(), 1);
        assert.deepEqual(await store.exposedPorts.listByInstance(b.id), []);
      });
    });

    describe('withTransaction', () => {
      it('commits every write of the callback and returns its value', async () => {
        const instance = instanceRecord({ state: 'starting' });
        const execution = executionRecord(instance.id);
        const result = await store.withTransaction(async (tx) => {
          await tx.instances.insert(instance);
          await tx.executions.insert(execution);
          await tx.instances.update(instance.id, { state: 'running' });
          return 'done';
        });
        assert.equal(result, 'done');
        assert.equal((await store.instances.get(instance.id))?.state, 'running');
        assert.deepEqual(await store.executions.get(execution.id), execution);
      });

      it('lets the callback read its own uncommitted writes', async () => {
        const instance = instanceRecord();
        await store.withTransaction(async (tx) => {
          await tx.instances.insert(instance);
          assert.deepEqual(await tx.instances.get(instance.id), instance);
          assert.deepEqual(await tx.instances.list({ nodeId: instance.nodeId }), [instance]);
        });
      });

      it('rolls back every write when the callback throws, and rethrows its error', async () => {
        const existing = instanceRecord({ state: 'running' });
        await store.instances.insert(existing);
        const fresh = instanceRecord();
        const boom = new Error('boom');
        await assert.rejects(
          store.withTransaction(async (tx) => {
            await tx.instances.insert(fresh);
            await tx.executions.insert(executionRecord(fresh.id));
            await tx.instances.update(existing.id, { state: 'stopped', stateReason: 'test' });
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(await store.instances.get(fresh.id), undefined);
        assert.deepEqual(await store.executions.list({ instanceId: fresh.id }), []);
        assert.deepEqual(await store.instances.get(existing.id), existing);
      });

      it('a caught ID_CONFLICT inside a transaction does not spoil it', async () => {
        const existing = instanceRecord();
        await store.instances.insert(existing);
        const other = instanceRecord();
        await store.withTransaction(async (tx) => {
          await rejectsWithCode(tx.instances.insert(existing), 'ID_CONFLICT');
          await tx.instances.insert(other);
        });
        assert.deepEqual(await store.instances.get(other.id), other);
      });

      it('a nested withTransaction joins the outer one: its writes are seen and rolled back with it', async () => {
        const inner = instanceRecord();
        await assert.rejects(
          store.withTransaction(async (tx) => {
            const value = await tx.withTransaction(async (nested) => {
              await nested.instances.insert(inner);
              return 7;
            });
            assert.equal(value, 7);
            assert.deepEqual(await tx.instances.get(inner.id), inner);
            throw new Error('outer fails');
          }),
          /outer fails/,
        );
        assert.equal(await store.instances.get(inner.id), undefined);
      });

      it('two concurrent transactions both commit all their writes', { timeout: 10_000 }, async () => {
        const run = (records: InstanceRecord[]) =>
          store.withTransaction(async (tx) => {
            for (const r of records) {
              await tx.instances.insert(r);
              await yieldToEventLoop();
            }
            return records.length;
          });
        const first = [instanceRecord(), instanceRecord(), instanceRecord()];
        const second = [instanceRecord(), instanceRecord(), instanceRecord()];
        assert.deepEqual(await Promise.all([run(first), run(second)]), [3, 3]);
        for (const r of [...first, ...second]) assert.deepEqual(await store.instances.get(r.id), r);
      });

      it('a failing transaction rolls back only its own writes while another commits concurrently', { timeout: 10_000 }, async () => {
        const kept = instanceRecord();
        const lost = instanceRecord();
        const results = await Promise.allSettled([
          store.withTransaction(async (tx) => {
            await tx.instances.insert(lost);
            await yieldToEventLoop();
            throw new Error('fails');
          }),
          store.withTransaction(async (tx) => {
            await yieldToEventLoop();
            await tx.instances.insert(kept);
          }),
        ]);
        assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled']);
        assert.equal(await store.instances.get(lost.id), undefined);
        assert.deepEqual(await store.instances.get(kept.id), kept);
      });

      it('plain calls made while a transaction is open complete and never see half of it', { timeout: 10_000 }, async () => {
        const nodeId = freshId('node');
        const pair = [instanceRecord({ nodeId }), instanceRecord({ nodeId })];
        const outside = instanceRecord();
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const transaction = store.withTransaction(async (tx) => {
          await tx.instances.insert(pair[0]!);
          await gate;
          await tx.instances.insert(pair[1]!);
        });
        await yieldToEventLoop();
        const plainWrite = store.instances.insert(outside);
        const plainRead = store.instances.list({ nodeId });
        await yieldToEventLoop();
        release();
        await Promise.all([transaction, plainWrite]);
        assert.ok([0, 2].includes((await plainRead).length), 'a single read saw part of a transaction');
        assert.deepEqual(await store.instances.get(outside.id), outside);
        assert.equal((await store.instances.list({ nodeId })).length, 2);
      });
    });

    it('close ends the store: later calls reject', async () => {
      const own = await open();
      await own.close();
      await assert.rejects(own.instances.get('any'));
    });
  });
}

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
const at = (offsetMs: number): Date => new Date(T0 + offsetMs);

let counter = 0;
const freshId = (prefix: string): string => `${prefix}-${++counter}-${randomUUID().slice(0, 8)}`;
let nextUid = 100_000;

function instanceRecord(overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id: freshId('inst'),
    state: 'running',
    stateReason: null,
    env: 'python',
    runtime: 'bwrap',
    envVars: {},
    limits: { memoryMb: 512, cpuCores: 1, pidsMax: 256 },
    metadata: {},
    hostUid: nextUid++,
    nodeId: 'node-1',
    createdAt: at(0),
    startedAt: null,
    stoppedAt: null,
    startDurationMs: null,
    sourceSnapshotId: null,
    lastSnapshotId: null,
    functionId: null,
    pooled: false,
    ...overrides,
  };
}

function snapshotRecord(overrides: Partial<SnapshotRecord> = {}): SnapshotRecord {
  const hex = (c: string): string => c.repeat(64);
  return {
    id: freshId('snap'),
    contentHash: hex('a'),
    parentId: null,
    parentHash: null,
    fsHash: hex('b'),
    envHash: hex('c'),
    memoryHash: null,
    size: 1234,
    storedBytes: 99,
    fileCount: 3,
    filesRead: 2,
    dirCount: 2,
    symlinkCount: 1,
    env: 'host',
    envVars: { A: '1' },
    metadata: { k: 'v' },
    sourceInstanceId: 'inst-x',
    sourceExecutionId: null,
    deterministic: true,
    durationMs: 12.5,
    createdAt: at(0),
    mergeParentIds: [],
    ...overrides,
  };
}

function executionRecord(instanceId: string, overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    id: freshId('exec'),
    instanceId,
    ephemeral: false,
    mode: 'ephemeral',
    status: 'running',
    command: ['python3', '-c', 'print(1)'],
    workingDir: '/workspace',
    envVarNames: ['HOME'],
    timeoutMs: 30_000,
    requestHash: 'sha256:0f1e',
    exitCode: null,
    exitReason: null,
    signal: null,
    stdoutBytes: 0,
    stderrBytes: 0,
    outputTruncated: false,
    progress: null,
    lastSeq: 0,
    startedAt: at(0),
    finishedAt: null,
    durationMs: null,
    ...overrides,
  };
}

async function seedInstance(store: Store): Promise<InstanceRecord> {
  const record = instanceRecord();
  await store.instances.insert(record);
  return record;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string, details?: Record<string, unknown>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isFaasError(err), `expected a FaasError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (details !== undefined) assert.deepEqual(err.details, details);
    return true;
  });
}

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** A macrotask turn, so other pending async work gets a chance to run in between. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function cachedResult(overrides: Partial<CachedResultRecord> = {}): CachedResultRecord {
  const result = overrides.result ?? '{"exit_code":0,"stdout":"hi\\n"}';
  return {
    key: freshId('key'),
    env: 'python',
    cacheKey: null,
    executionId: freshId('exec'),
    result,
    sizeBytes: Buffer.byteLength(result),
    createdAt: at(0),
    lastUsedAt: at(0),
    hits: 0,
    ...overrides,
  };
}

function sshKeyRecord(instanceId: string, overrides: Partial<SshKeyRecord> = {}): SshKeyRecord {
  return {
    id: freshId('key'),
    instanceId,
    algorithm: 'ed25519',
    publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPunSI4ocBZY/HIX3NHd6+jw6qbACsY+PaNv0D/kN9/Y faas:x',
    fingerprint: `SHA256:${freshId('fp')}`,
    createdAt: at(0),
    expiresAt: at(30 * 86_400_000),
    rotatedFrom: null,
    revokedAt: null,
    revokeReason: null,
    byo: false,
    autoRotateBeforeMs: null,
    retiredAt: null,
    ...overrides,
  };
}
