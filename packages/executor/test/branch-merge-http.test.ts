import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/** End-to-end: POST /api/v1/branches/merge over branched runs. */

let server: TestServer;
let parent: any;

before(async () => {
  server = await startTestServer();
  parent = await execute({ mode: 'checkpointed', code: 'cd /workspace && echo a0 > a && echo b0 > b && mkdir d && echo x0 > d/x && echo keep > k' });
});

after(async () => {
  await server.close();
});

type Res = { status: number; body: any; text: string };

function assertError(res: Res, status: number, code: string): Record<string, any> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body.error.code, code, res.text);
  return res.body.error.details ?? {};
}

async function execute(body: Record<string, unknown>): Promise<any> {
  const res = await server.request('POST', '/api/v1/execute', body);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.exit_code, 0, res.body.stderr);
  return res.body;
}

const branch = (code: string) => execute({ mode: 'branched', branch_from: parent.snapshot_id, code: `cd /workspace && ${code}` });

async function merge(body: Record<string, unknown>): Promise<Res> {
  return server.request('POST', '/api/v1/branches/merge', body);
}

/** Every file under /workspace of a snapshot as "path=content" lines. */
async function contents(snapshotId: string): Promise<string> {
  const r = await execute({ mode: 'branched', branch_from: snapshotId, code: 'cd /workspace && find . -type f | sort | while read f; do echo "$f=$(cat "$f")"; done' });
  return r.stdout;
}

async function snapshotCount(): Promise<number> {
  return (await server.request('GET', '/api/v1/snapshots')).body.snapshots.length;
}

describe('branch merge', () => {
  it('non-overlapping changes of two branches combine into a snapshot that records both parents', async () => {
    const one = await branch('echo a1 > a && echo new1 > c1');
    const two = await branch('echo b2 > b && rm d/x && echo new2 > c2');
    const res = await merge({ branch_ids: [one.id, two.id], metadata: { why: 'combine' } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.base_snapshot_id, parent.snapshot_id);
    assert.deepEqual(res.body.merged_from, [one.snapshot_id, two.snapshot_id]);
    assert.deepEqual(res.body.snapshot.merge_parent_ids, [one.snapshot_id, two.snapshot_id]);
    assert.equal(res.body.snapshot.parent_id, one.snapshot_id);
    assert.deepEqual(res.body.resolved_conflicts, []);
    assert.equal(await contents(res.body.snapshot.id), './a=a1\n./b=b2\n./c1=new1\n./c2=new2\n./k=keep\n');
    // The inputs are unchanged.
    assert.equal(await contents(one.snapshot_id), './a=a1\n./b=b0\n./c1=new1\n./d/x=x0\n./k=keep\n');
    // Lineage shows the merge under both parents' chain.
    const lineage = (await server.request('GET', `/api/v1/snapshots/${res.body.snapshot.id}/lineage`)).body;
    assert.equal(lineage.ancestors[0].id, one.snapshot_id);
  });

  it('a path changed differently is a conflict, reported path by path, with nothing written', async () => {
    const three = await branch('echo a3 > a && echo same > s');
    const four = await branch('echo a4 > a && echo same > s && chmod 600 k');
    const before = await snapshotCount();
    const details = assertError(await merge({ branch_ids: [three.id, four.id] }), 409, 'MERGE_CONFLICT');
    assert.equal(details.base_snapshot_id, parent.snapshot_id);
    assert.deepEqual(
      details.conflicts.map((c: any) => [c.path, c.kind, c.sides.map((s: any) => s.snapshot_id)]),
      [['workspace/a', 'content', [three.snapshot_id, four.snapshot_id]]],
    );
    assert.equal(await snapshotCount(), before, 'a refused merge wrote a snapshot');

    const ours = await merge({ branch_ids: [three.id, four.id], strategy: 'ours' });
    assert.equal(ours.status, 201, ours.text);
    assert.equal((await contents(ours.body.snapshot.id)).split('\n')[0], './a=a3');
    assert.deepEqual(ours.body.resolved_conflicts.map((c: any) => [c.path, c.winner]), [['workspace/a', three.snapshot_id]]);
    const theirs = await merge({ branch_ids: [three.id, four.id], strategy: 'theirs' });
    assert.equal((await contents(theirs.body.snapshot.id)).split('\n')[0], './a=a4');
    const prefer = await merge({ branch_ids: [three.id, four.id], strategy: { prefer: four.id } });
    assert.equal(prefer.status, 201, prefer.text);
    assert.equal((await contents(prefer.body.snapshot.id)).split('\n')[0], './a=a4');
    // The non-conflicting mode change on one side is kept.
    const mode = await execute({ mode: 'branched', branch_from: ours.body.snapshot.id, code: 'stat -c %a /workspace/k' });
    assert.equal(mode.stdout, '600\n');
  });

  it('delete against modify, and three inputs', async () => {
    const del = await branch('rm a');
    const mod = await branch('echo a6 > a');
    const details = assertError(await merge({ branch_ids: [del.id, mod.id] }), 409, 'MERGE_CONFLICT');
    assert.equal(details.conflicts[0].kind, 'delete_modify');
    assert.deepEqual(details.conflicts[0].sides.map((s: any) => s.state.split(' ')[0]), ['deleted', 'file']);
    const x = await branch('echo 1 > x1');
    const y = await branch('echo 2 > x2');
    const z = await branch('echo 3 > x3');
    const three = await merge({ snapshot_ids: [x.snapshot_id, y.content_hash, z.snapshot_id] });
    assert.equal(three.status, 201, three.text);
    assert.match(await contents(three.body.snapshot.id), /x1=1\n.*x2=2\n.*x3=3\n/s);
  });

  it('bad input gets clear errors', async () => {
    const lone = await execute({ mode: 'checkpointed', code: 'echo lone > /workspace/l' });
    const other = await execute({ mode: 'checkpointed', code: 'echo other > /workspace/o' });
    assertError(await merge({ snapshot_ids: [lone.snapshot_id, other.snapshot_id] }), 422, 'MERGE_UNRELATED');
    assertError(await merge({ snapshot_ids: [lone.snapshot_id] }), 400, 'VALIDATION_FAILED');
    assertError(await merge({ snapshot_ids: [lone.snapshot_id, lone.snapshot_id] }), 400, 'VALIDATION_FAILED');
    assertError(await merge({ snapshot_ids: [lone.snapshot_id, other.snapshot_id], branch_ids: [lone.id, other.id] }), 400, 'VALIDATION_FAILED');
    assertError(await merge({ snapshot_ids: [lone.snapshot_id, 'snap-zzzzzzzzzzzzzzzz'] }), 404, 'SNAPSHOT_NOT_FOUND');
    assertError(await merge({ snapshot_ids: [lone.snapshot_id, 'nonsense'] }), 400, 'INVALID_HASH');
    const plain = await execute({ code: 'true' });
    assertError(await merge({ branch_ids: [lone.id, plain.id] }), 404, 'NO_SNAPSHOT_FOR_EXECUTION');
    assertError(await merge({ snapshot_ids: [lone.snapshot_id, other.snapshot_id], strategy: { prefer: 'snap-notaninput000' } }), 400, 'VALIDATION_FAILED');
    assertError(await merge({ snapshot_ids: [lone.snapshot_id, other.snapshot_id], strategy: 'mine' }), 400, 'VALIDATION_FAILED');
  });
});
