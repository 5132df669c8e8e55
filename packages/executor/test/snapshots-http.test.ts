import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openLocalBlobStore } from '../src/blobs/local/local-blob-store.ts';
import { TreeReader } from '../src/snapshots/tree-store.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/** End-to-end: snapshots of instances, restore, branches, lineage, diff, delete, verify, gc. */

let server: TestServer;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server.close();
});

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

type Res = { status: number; body: any; text: string };

function assertError(res: Res, status: number, code: string): Record<string, unknown> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body.error.code, code, res.text);
  assert.ok(res.body.error.message.length > 0);
  return res.body.error.details ?? {};
}

async function createInstance(body: Record<string, unknown> = {}): Promise<any> {
  const res = await server.request('POST', '/api/v1/instances', body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function sh(instanceId: string, code: string, expectExit = 0): Promise<string> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { code, language: 'bash', timeout_ms: 120_000 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.exit_code, expectExit, `exit ${res.body.exit_code}: ${res.body.stderr}`);
  return res.body.stdout;
}

async function snapshot(body: Record<string, unknown>): Promise<any> {
  const res = await server.request('POST', '/api/v1/snapshots', body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function restore(ref: string, body: Record<string, unknown> = {}): Promise<any> {
  const res = await server.request('POST', `/api/v1/snapshots/${ref}/restore`, body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function deleteInstance(id: string): Promise<void> {
  const res = await server.request('DELETE', `/api/v1/instances/${id}`);
  assert.equal(res.status, 200, res.text);
}

/**
 * Every entry below a dir inside an instance as one line each: raw path (hex), type, mode,
 * owner, size, content sha256 or link target. Sorted by raw bytes, so two trees compare as text.
 */
const MANIFEST = String.raw`
import hashlib, os, stat, sys
root = os.fsencode(sys.argv[1])
out = []
for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
        p = os.path.join(dirpath, name)
        st = os.lstat(p)
        rel = os.path.relpath(p, root).hex()
        mode = oct(stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            out.append(f"{rel} link {os.readlink(p).hex()} uid={st.st_uid}")
        elif stat.S_ISDIR(st.st_mode):
            out.append(f"{rel} dir {mode} uid={st.st_uid}")
        else:
            h = hashlib.sha256()
            with open(p, 'rb') as f:
                for chunk in iter(lambda: f.read(1 << 20), b''):
                    h.update(chunk)
            out.append(f"{rel} file {mode} uid={st.st_uid} size={st.st_size} nlink={st.st_nlink} {h.hexdigest()}")
print("\n".join(sorted(out)))
`;

async function manifest(instanceId: string, dir = '/workspace'): Promise<string> {
  return sh(instanceId, `python3 - ${dir} <<'PY'\n${MANIFEST}\nPY`);
}

/** Builds a tree with every kind of entry a snapshot must carry. */
const RICH_TREE = String.raw`
set -e
cd /workspace
mkdir -p src/deep/er empty-dir locked
printf 'hello\n' > src/hello.txt
printf '#!/bin/sh\necho run\n' > src/run.sh && chmod 755 src/run.sh
printf 'secret' > src/private && chmod 600 src/private
printf 'sticky' > src/deep/er/odd-mode && chmod 4751 src/deep/er/odd-mode
: > src/empty-file
chmod 700 empty-dir
ln -s hello.txt src/link-rel
ln -s /nonexistent/target src/link-dangling
ln -s ../src src/deep/link-dir
printf 'unicode' > 'héllo wörld ✓.txt'
printf 'newline' > $'line\nbreak'
printf 'dash' > ./-leading-dash
printf 'spaces' > '  spaced  '
python3 -c "import os; open(os.fsencode('/workspace/') + b'\xff\xfe-not-utf8', 'w').write('raw')"
python3 -c "import os; os.symlink(b'\xfftarget', os.fsencode('/workspace/') + b'link-raw')"
printf 'x' > locked/inside && chmod 555 locked
# A 200 MB sparse file with data at both ends and in the middle.
truncate -s 200M big.sparse
printf 'start' | dd of=big.sparse conv=notrunc status=none
printf 'middle' | dd of=big.sparse bs=1 seek=104857600 conv=notrunc status=none
printf 'end' | dd of=big.sparse bs=1 seek=209715197 conv=notrunc status=none
`;

describe('snapshot, restore and compare', () => {
  let source: any;
  let snap: any;
  let sourceManifest: string;

  before(async () => {
    source = await createInstance({ env_vars: { GREETING: 'hi there', EMPTY: '' } });
    await sh(source.id, RICH_TREE);
    sourceManifest = await manifest(source.id);
    snap = await snapshot({ instance_id: source.id, metadata: { purpose: 'round trip' } });
  });

  it('records what it captured', async () => {
    assert.match(snap.id, /^snap-[0-9a-z]{16}$/);
    assert.match(snap.content_hash, /^[0-9a-f]{64}$/);
    assert.match(snap.fs_hash, /^[0-9a-f]{64}$/);
    assert.match(snap.env_hash, /^[0-9a-f]{64}$/);
    assert.equal(snap.parent_id, null);
    assert.equal(snap.parent_hash, null);
    assert.equal(snap.memory_hash, null);
    assert.equal(snap.source_instance_id, source.id);
    assert.deepEqual(snap.metadata, { purpose: 'round trip' });
    assert.deepEqual(snap.env_vars, { GREETING: 'hi there', EMPTY: '' });
    assert.equal(snap.deterministic, true);
    assert.ok(snap.size >= 200 * 1024 * 1024, `size ${snap.size}`);
    assert.ok(snap.file_count >= 12 && snap.symlink_count >= 4 && snap.dir_count >= 5, JSON.stringify(snap));
    assert.ok(snap.stored_bytes > 200 * 1024 * 1024, 'the big file was stored');
    const byId = await server.request('GET', `/api/v1/snapshots/${snap.id}`);
    const byHash = await server.request('GET', `/api/v1/snapshots/${snap.content_hash}`);
    assert.deepEqual(byId.body, snap);
    assert.deepEqual(byHash.body, snap);
  });

  it('a restored instance has the same files, modes, symlinks, empty dirs, odd names and env', async () => {
    const restored = await restore(snap.id, { metadata: { from: snap.id } });
    assert.equal(restored.source_snapshot_id, snap.id);
    assert.deepEqual(restored.env_vars, { GREETING: 'hi there', EMPTY: '' });
    assert.equal(await manifest(restored.id), sourceManifest);
    assert.equal(await sh(restored.id, 'printf "%s|%s" "$GREETING" "${EMPTY-unset}"'), 'hi there|');
    // The sandbox user owns its files and can change them; base files stay root's (nobody inside).
    assert.equal(await sh(restored.id, 'echo more >> /workspace/src/hello.txt && cat /workspace/src/hello.txt && stat -c %U /etc/passwd /workspace'), 'hello\nmore\nnobody\nuser\n');
    assert.equal(await sh(restored.id, 'hostname; cat /etc/hostname'), `${restored.id}\n${restored.id}\n`);
    // The write went to the restored copy only.
    assert.equal(await sh(source.id, 'cat /workspace/src/hello.txt'), 'hello\n');
    await deleteInstance(restored.id);
  });

  it('snapshotting a restored instance chains the snapshot it came from as parent', async () => {
    const restored = await restore(snap.content_hash);
    await sh(restored.id, 'echo changed > /workspace/src/hello.txt');
    const child = await snapshot({ instance_id: restored.id });
    assert.equal(child.parent_id, snap.id);
    assert.equal(child.parent_hash, snap.content_hash);
    const grandchild = await snapshot({ instance_id: restored.id });
    assert.equal(grandchild.parent_id, child.id, 'the next snapshot of the same instance chains the previous one');
    assert.equal(grandchild.fs_hash, child.fs_hash);
    assert.notEqual(grandchild.content_hash, child.content_hash, 'the parent is part of the hash');
    assert.equal(grandchild.stored_bytes, 0, 'nothing changed, nothing stored');

    const lineage = (await server.request('GET', `/api/v1/snapshots/${child.id}/lineage`)).body;
    assert.deepEqual(lineage.ancestors.map((n: any) => [n.id, n.depth]), [[snap.id, -1]]);
    assert.deepEqual(lineage.descendants.map((n: any) => [n.id, n.depth, n.parent_id]), [[grandchild.id, 1, child.id]]);
    const children = (await server.request('GET', `/api/v1/snapshots?parent_id=${snap.id}`)).body.snapshots.map((s: any) => s.id);
    assert.deepEqual(children, [child.id]);

    const diff = (await server.request('GET', `/api/v1/snapshots/diff?from=${snap.id}&to=${child.id}`)).body;
    assert.deepEqual(diff.added, []);
    assert.deepEqual(diff.removed, []);
    assert.deepEqual(diff.modified, [{ path: 'workspace/src/hello.txt', type: 'file', old_type: 'file', old_size: 6, size: 8, changes: ['content'] }]);
    assert.deepEqual(diff.env_changed, []);

    const del = await server.request('DELETE', `/api/v1/snapshots/${child.id}`);
    assertError(del, 409, 'SNAPSHOT_IN_USE');
    await deleteInstance(restored.id);
    const cascade = await server.request('DELETE', `/api/v1/snapshots/${child.id}?cascade=true`);
    assert.equal(cascade.status, 200, cascade.text);
    assert.deepEqual(cascade.body.deleted, [grandchild.id, child.id]);
    assertError(await server.request('GET', `/api/v1/snapshots/${child.id}`), 404, 'SNAPSHOT_NOT_FOUND');
  });
});

describe('branches', () => {
  it('10 branches writing the same path never see each other, the snapshot or the source', async () => {
    const source = await createInstance();
    await sh(source.id, 'mkdir -p /workspace/shared && echo original > /workspace/shared/file && echo keep > /workspace/other');
    const snap = await snapshot({ instance_id: source.id });
    const res = await server.request('POST', '/api/v1/branches', { snapshot_id: snap.id, count: 10, metadata: { batch: 'iso' } });
    assert.equal(res.status, 201, res.text);
    const branches: any[] = res.body.branches;
    assert.equal(branches.length, 10);
    assert.equal(new Set(branches.map((b) => b.id)).size, 10);
    await Promise.all(branches.map((b) => sh(b.id, `echo ${b.id} > /workspace/shared/file; rm /workspace/other; echo new-${b.id} > /workspace/shared/added`)));
    for (const b of branches) {
      assert.equal(await sh(b.id, 'cat /workspace/shared/file /workspace/shared/added; test ! -e /workspace/other && echo gone'), `${b.id}\nnew-${b.id}\ngone\n`);
    }
    assert.equal(await sh(source.id, 'cat /workspace/shared/file /workspace/other'), 'original\nkeep\n');
    const fresh = await restore(snap.id);
    assert.equal(await sh(fresh.id, 'cat /workspace/shared/file /workspace/other; ls /workspace/shared'), 'original\nkeep\nfile\n');

    const listed = (await server.request('GET', `/api/v1/branches?snapshot_id=${snap.id}`)).body;
    assert.equal(listed.snapshot_id, snap.id);
    assert.deepEqual(listed.branches.map((b: any) => b.id).sort(), [...branches.map((b) => b.id), fresh.id].sort());

    const refused = await server.request('DELETE', `/api/v1/snapshots/${snap.id}`);
    const details = assertError(refused, 409, 'SNAPSHOT_IN_USE');
    assert.equal((details.instances as string[]).length, 11);
    const cascade = await server.request('DELETE', `/api/v1/snapshots/${snap.id}?cascade=true`);
    assert.equal(cascade.status, 200, cascade.text);
    for (const b of branches) assert.equal((await server.request('GET', `/api/v1/instances/${b.id}`)).body.state, 'deleted');
    await deleteInstance(source.id);
  });
});

describe('determinism, dedup and incremental storage', () => {
  it('the same tree built in different orders, at different times, gives the same hashes', async () => {
    const a = await createInstance({ env_vars: { X: '1', Y: '2' } });
    const b = await createInstance({ env_vars: { Y: '2', X: '1' } });
    await sh(a.id, 'cd /workspace && mkdir d && echo one > d/1 && echo two > 2 && ln -s d/1 l && chmod 640 2');
    await new Promise((r) => setTimeout(r, 1100));
    await sh(b.id, 'cd /workspace && ln -s d/1 l && echo two > 2 && chmod 640 2 && mkdir d && echo one > d/1 && touch -d 2001-01-01 d/1');
    const sa = await snapshot({ instance_id: a.id });
    const sb = await snapshot({ instance_id: b.id });
    assert.equal(sa.fs_hash, sb.fs_hash);
    assert.equal(sa.env_hash, sb.env_hash);
    assert.equal(sa.content_hash, sb.content_hash);
    // One mode bit differs: the hash differs.
    await sh(b.id, 'chmod 644 /workspace/2');
    const sb2 = await snapshot({ instance_id: b.id });
    assert.notEqual(sb2.fs_hash, sa.fs_hash);
    await Promise.all([deleteInstance(a.id), deleteInstance(b.id)]);
  });

  it('equal contents are stored once, and a snapshot after one change stores only that change', async () => {
    const inst = await createInstance();
    // 200 files of 64 KiB, all distinct, plus 20 copies of one 1 MiB file.
    await sh(inst.id, String.raw`
      cd /workspace && mkdir -p tree/a tree/b dups
      for i in $(seq 1 200); do head -c 65536 /dev/urandom > tree/$((i % 2 == 0 ? 0 : 1))-$i.bin; done
      mv tree/0-* tree/a/ && mv tree/1-* tree/b/
      head -c 1048576 /dev/urandom > dups/0
      for i in $(seq 1 19); do cp dups/0 dups/$i; done
      sleep 0.2 # older than the change-time margin of the file hash cache: remembered, not re-read
    `);
    const first = await snapshot({ instance_id: inst.id });
    const contents = 200 * 65536 + 1048576;
    assert.ok(first.stored_bytes >= contents && first.stored_bytes < contents + 256 * 1024, `stored ${first.stored_bytes}, contents ${contents}`);
    assert.equal(first.size >= 200 * 65536 + 20 * 1048576, true);
    await sh(inst.id, 'head -c 65536 /dev/urandom > /workspace/tree/a/0-2.bin');
    const second = await snapshot({ instance_id: inst.id });
    assert.equal(second.parent_id, first.id);
    // Only the changed file was read again; the rest were known unchanged by their stat.
    assert.equal(second.file_count, first.file_count);
    assert.equal(second.files_read, 1, `read ${second.files_read} of ${second.file_count}`);
    // The new blob, plus the nodes of tree/a, tree, workspace and the root (a few KiB).
    assert.ok(second.stored_bytes >= 65536 && second.stored_bytes < 65536 + 64 * 1024, `stored ${second.stored_bytes}`);
    await deleteInstance(inst.id);
  });
});

describe('first snapshot of a restored instance', () => {
  it('reads only what the instance changed, and never misses a same-size change', async () => {
    const inst = await createInstance();
    await sh(inst.id, 'mkdir -p /workspace/t && for i in $(seq 1 300); do echo "file $i" > /workspace/t/f$i; done; echo aaaa > /workspace/t/same; echo m > /workspace/t/mode');
    const snap = await snapshot({ instance_id: inst.id });
    const restored = await restore(snap.id);
    await new Promise((r) => setTimeout(r, 100));
    // Same size, other content; a mode change; a new file; a deleted one.
    await sh(restored.id, 'echo bbbb > /workspace/t/same; chmod 600 /workspace/t/mode; echo new > /workspace/t/new; rm /workspace/t/f1');
    const next = await snapshot({ instance_id: restored.id });
    assert.equal(next.parent_id, snap.id);
    assert.ok(next.files_read <= 5, `read ${next.files_read} of ${next.file_count} files`);
    const again = await restore(next.id);
    assert.equal(await sh(again.id, 'cat /workspace/t/same /workspace/t/new; stat -c %a /workspace/t/mode; test -e /workspace/t/f1 || echo f1-gone; cat /workspace/t/f300'), 'bbbb\nnew\n600\nf1-gone\nfile 300\n');
    await Promise.all([deleteInstance(inst.id), deleteInstance(restored.id), deleteInstance(again.id)]);
  });
});

describe('verify and gc', () => {
  it('verify is clean, then reports a corrupt blob and a missing one precisely', async () => {
    const inst = await createInstance();
    await sh(inst.id, 'echo verify-me-unique-1 > /workspace/a; echo verify-me-unique-2 > /workspace/b');
    const snap = await snapshot({ instance_id: inst.id });
    const clean = (await server.request('POST', '/api/v1/snapshots/verify')).body;
    assert.equal(clean.ok, true, JSON.stringify(clean));
    assert.deepEqual(clean.stray_files, []);
    assert.ok(clean.snapshots_checked >= 1);

    const blobs = await openLocalBlobStore({ root: join(server.dataDir, 'blobs') });
    const hashA = sha('verify-me-unique-1\n');
    const hashB = sha('verify-me-unique-2\n');
    const pathA = blobs.pathOf(hashA);
    chmodSync(pathA, 0o644);
    writeFileSync(pathA, 'tampered\n');
    rmSync(blobs.pathOf(hashB));
    const report = (await server.request('POST', '/api/v1/snapshots/verify')).body;
    assert.equal(report.ok, false);
    assert.deepEqual(report.corrupt_blobs.map((c: any) => c.hash), [hashA]);
    const missing = report.missing_blobs.filter((m: any) => m.snapshot_id === snap.id).map((m: any) => [m.hash, m.path]).sort();
    assert.deepEqual(missing, [[hashA, 'workspace/a'], [hashB, 'workspace/b']].sort());
    // Restoring it fails clearly instead of producing a half tree.
    assertError(await server.request('POST', `/api/v1/snapshots/${snap.id}/restore`), 500, 'SNAPSHOT_CORRUPT');
    await deleteInstance(inst.id);
    const del = await server.request('DELETE', `/api/v1/snapshots/${snap.id}`);
    assert.equal(del.status, 200, del.text);
    const gc = await server.request('POST', '/api/v1/snapshots/gc', { grace_ms: 0 });
    assert.equal(gc.status, 200, gc.text);
    assert.equal((await server.request('POST', '/api/v1/snapshots/verify')).body.ok, true);
  });

  it('gc frees exactly the blobs no remaining snapshot reaches', async () => {
    const inst = await createInstance();
    await sh(inst.id, 'echo shared-content-gc > /workspace/keep; echo only-in-first-gc > /workspace/gone');
    const first = await snapshot({ instance_id: inst.id });
    await sh(inst.id, 'rm /workspace/gone; echo added-in-second-gc > /workspace/new');
    const other = await createInstance();
    await sh(other.id, 'echo shared-content-gc > /workspace/keep; echo added-in-second-gc > /workspace/new');
    const kept = await snapshot({ instance_id: other.id });
    await deleteInstance(inst.id);
    await server.request('POST', '/api/v1/snapshots/gc', { grace_ms: 0 });

    const blobs = await openLocalBlobStore({ root: join(server.dataDir, 'blobs') });
    const reader = new TreeReader(blobs);
    const before = new Set<string>();
    for await (const b of blobs.list()) before.add(b.hash);
    const reachableFirst = new Set<string>();
    await reader.collect(first.fs_hash, reachableFirst);
    const live = new Set<string>();
    for (const s of (await server.request('GET', '/api/v1/snapshots')).body.snapshots) if (s.id !== first.id) await reader.collect(s.fs_hash, live);
    const expected = [...reachableFirst].filter((h) => !live.has(h) && before.has(h)).sort();
    assert.ok(expected.includes(sha('only-in-first-gc\n')));
    assert.ok(!expected.includes(sha('shared-content-gc\n')));

    assert.equal((await server.request('DELETE', `/api/v1/snapshots/${first.id}`)).status, 200);
    const gc = (await server.request('POST', '/api/v1/snapshots/gc', { grace_ms: 0 })).body;
    assert.equal(gc.blobs_deleted, expected.length, JSON.stringify(gc));
    const after = new Set<string>();
    for await (const b of blobs.list()) after.add(b.hash);
    assert.deepEqual([...before].filter((h) => !after.has(h)).sort(), expected);
    // The remaining snapshot is whole.
    const restored = await restore(kept.id);
    assert.equal(await sh(restored.id, 'cat /workspace/keep /workspace/new'), 'shared-content-gc\nadded-in-second-gc\n');
    await Promise.all([deleteInstance(restored.id), deleteInstance(other.id)]);
    assert.ok(statSync(join(server.dataDir, 'snapshots', 'trees')).isDirectory());
    assert.ok(!readdirSync(join(server.dataDir, 'snapshots', 'trees')).includes(first.fs_hash), 'the deleted snapshot’s tree was removed');
  });
});

describe('bad input', () => {
  it('gets clear errors with stable codes', async () => {
    const inst = await createInstance();
    const snap = await snapshot({ instance_id: inst.id });
    assertError(await server.request('GET', '/api/v1/snapshots/snap-0000000000000000'), 404, 'SNAPSHOT_NOT_FOUND');
    assertError(await server.request('GET', `/api/v1/snapshots/${'0'.repeat(64)}`), 404, 'SNAPSHOT_NOT_FOUND');
    assertError(await server.request('GET', '/api/v1/snapshots/abc123'), 400, 'INVALID_HASH');
    assertError(await server.request('GET', `/api/v1/snapshots/${'A'.repeat(64)}`), 400, 'INVALID_HASH');
    assertError(await server.request('GET', `/api/v1/snapshots/${'0'.repeat(63)}`), 400, 'INVALID_HASH');
    assertError(await server.request('GET', `/api/v1/snapshots/diff?from=${snap.id}&to=nope`), 400, 'INVALID_HASH');
    assertError(await server.request('GET', `/api/v1/snapshots/diff?from=${snap.id}`), 400, 'VALIDATION_FAILED');
    assertError(await server.request('GET', `/api/v1/snapshots/diff?from=${snap.id}&to=snap-zzzzzzzzzzzzzzzz`), 404, 'SNAPSHOT_NOT_FOUND');
    assertError(await server.request('POST', '/api/v1/snapshots', {}), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/snapshots', { instance_id: inst.id, execution_id: 'exec-x' }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/snapshots', { instance_id: 'inst-unknown' }), 404, 'INSTANCE_NOT_FOUND');
    assertError(await server.request('POST', '/api/v1/snapshots', { execution_id: 'exec-unknown' }), 404, 'EXECUTION_NOT_FOUND');
    assertError(await server.request('POST', '/api/v1/snapshots', { instance_id: inst.id, metadata: { a: 1 } }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/snapshots', '{"instance_id":'), 400, 'INVALID_JSON');
    assertError(await server.request('POST', '/api/v1/branches', { snapshot_id: snap.id, count: 0 }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/branches', { snapshot_id: snap.id, count: 100000 }), 400, 'VALIDATION_FAILED');
    assertError(await server.request('POST', '/api/v1/branches', { snapshot_id: 'snap-zzzzzzzzzzzzzzzz' }), 404, 'SNAPSHOT_NOT_FOUND');
    assertError(await server.request('POST', '/api/v1/snapshots/snap-zzzzzzzzzzzzzzzz/restore'), 404, 'SNAPSHOT_NOT_FOUND');
    assertError(await server.request('DELETE', '/api/v1/snapshots/snap-zzzzzzzzzzzzzzzz'), 404, 'SNAPSHOT_NOT_FOUND');
    assertError(await server.request('DELETE', `/api/v1/snapshots/${snap.id}?cascade=maybe`), 400, 'VALIDATION_FAILED');
    assertError(await server.request('GET', '/api/v1/snapshots?parent_id=bogus'), 400, 'INVALID_HASH');
    await deleteInstance(inst.id);
    const details = assertError(await server.request('POST', '/api/v1/snapshots', { instance_id: inst.id }), 409, 'INSTANCE_NOT_RUNNING');
    assert.equal(details.state, 'deleted');
    // Nothing was lost by the bad requests.
    assert.equal((await server.request('GET', `/api/v1/snapshots/${snap.id}`)).status, 200);
  });

  it('snapshots by execution id record it', async () => {
    const inst = await createInstance();
    const res = await server.request('POST', `/api/v1/instances/${inst.id}/exec`, { command: ['sh', '-c', 'echo by-exec > /workspace/f'] });
    const snap = await snapshot({ execution_id: res.body.id });
    assert.equal(snap.source_execution_id, res.body.id);
    assert.equal(snap.source_instance_id, inst.id);
    await deleteInstance(inst.id);
  });
});
