/**
 * `faas snapshot ...` and `faas branch` against a real executor, spawned as a user would run
 * them: create, ls, show, restore, diff, lineage, branch, verify, rm --cascade, gc.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FaaSPlatformClient, type Instance } from '@faas/sdk';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { runFaas, runFaasOk, type Run } from './fixtures/run-cli.ts';


let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;

before(async () => {
  server = await startTestServer();
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
});

after(async () => {
  await server?.close();
});

function faas(args: string[]): Promise<Run> {
  return runFaas(server, args);
}

/** Runs and expects exit 0 with nothing on stderr. */
function ok(args: string[]): Promise<string> {
  return runFaasOk(server, args);
}

async function sh(instance: Instance, code: string): Promise<string> {
  const result = await instance.exec({ code });
  assert.equal(result.exitCode, 0, result.stderr);
  return result.stdout;
}

describe('faas snapshot and faas branch', () => {
  let source: Instance;
  let first: string;
  let second: string;
  let restored: string;

  before(async () => {
    source = await client.instances.create({ envVars: { STAGE: 'one' } });
    await sh(source, 'echo one > a.txt && echo gone > old.txt');
  });

  after(async () => {
    await source?.delete();
  });

  test('create prints the snapshot id; --meta labels it; an execution id snapshots its instance', async () => {
    first = (await ok(['snapshot', 'create', source.id, '--meta', 'step=one', '--meta', 'note=a=b'])).trim();
    assert.match(first, /^snap-[0-9a-z]{16}$/);
    const run = await source.exec({ code: 'echo two >> a.txt && printf 12345678 > b.txt && rm old.txt' });
    const json = JSON.parse(await ok(['snapshot', 'create', run.id, '--live', '--json'])) as { id: string; parentId: string; sourceExecutionId: string; deterministic: boolean };
    second = json.id;
    assert.equal(json.parentId, first);
    assert.equal(json.sourceExecutionId, run.id);
    assert.equal(json.deterministic, false);
  });

  test('ls lists them in a table, filtered by instance and parent', async () => {
    const table = await ok(['snapshot', 'ls', '--instance', source.id]);
    const lines = table.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID\s+PARENT\s+INSTANCE\s+SIZE\s+FILES\s+CREATED\s+METADATA$/);
    assert.equal(lines.length, 3, table);
    assert.ok(lines[1]!.startsWith(`${second}  ${first}  ${source.id}`), table);
    assert.match(lines[2]!, new RegExp(`^${first}\\s+-\\s+${source.id}.*step=one, note=a=b$`));
    const children = await ok(['snapshot', 'ls', '--parent', first]);
    assert.equal(children.trimEnd().split('\n').length, 2);
    assert.ok(children.includes(second));
    const json = JSON.parse(await ok(['snapshot', 'ls', '--json'])) as Array<{ id: string }>;
    assert.ok(json.some((s) => s.id === first));
  });

  test('show prints the fields, env var names but not their values', async () => {
    const out = await ok(['snapshot', 'show', second]);
    assert.match(out, new RegExp(`^id\\s+${second}$`, 'm'));
    assert.match(out, new RegExp(`^parent\\s+${first}$`, 'm'));
    assert.match(out, /^content hash\s+[0-9a-f]{64}$/m);
    assert.match(out, /^env vars\s+STAGE$/m);
    assert.match(out, /^capture\s+live, /m);
    const hash = /^content hash\s+([0-9a-f]{64})$/m.exec(out)![1]!;
    const byHash = JSON.parse(await ok(['snapshot', 'show', hash, '--json'])) as { id: string; envVars: Record<string, string> };
    assert.equal(byHash.id, second);
    assert.deepEqual(byHash.envVars, { STAGE: 'one' });
  });

  test('restore prints a new instance id that has the files', async () => {
    restored = (await ok(['snapshot', 'restore', second, '--id', `restored-${Date.now()}`])).trim();
    assert.match(restored, /^restored-\d+$/);
    const result = await client.instances.exec(restored, { code: 'cat a.txt b.txt; echo; echo $STAGE' });
    assert.equal(result.stdout, 'one\ntwo\n12345678\none\n');
  });

  test('diff prints +, - and M lines and a summary', async () => {
    const out = await ok(['snapshot', 'diff', first, second]);
    const lines = out.trimEnd().split('\n');
    assert.ok(lines.some((l) => /^\+ (.*\/)?b\.txt \(8 B\)$/.test(l)), out);
    assert.ok(lines.some((l) => /^- (.*\/)?old\.txt$/.test(l)), out);
    assert.ok(lines.some((l) => /^M (.*\/)?a\.txt \(content\)$/.test(l)), out);
    assert.match(lines.at(-1)!, /^\d+ added, \d+ removed, \d+ modified \(\+.* B, -.* B\)$/);
    const json = JSON.parse(await ok(['snapshot', 'diff', first, second, '--json'])) as { from: string; summary: { added: number } };
    assert.equal(json.from, first);
    assert.ok(json.summary.added >= 1);
  });

  test('branch -n 3 prints three new instance ids; snapshot branches lists them', async () => {
    const ids = (await ok(['branch', second, '-n', '3'])).trim().split('\n');
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids).size, 3);
    for (const id of ids) assert.equal((await client.instances.get(id)).sourceSnapshotId, second);
    const listed = await ok(['snapshot', 'branches', second]);
    for (const id of [...ids, restored]) assert.ok(listed.includes(id), listed);
    // A snapshot of a branch becomes a child of `second`, for the lineage below.
    await ok(['snapshot', 'create', ids[0]!, '--instance', '--meta', 'step=branched']);
  });

  test('lineage draws the ancestors above, the snapshot marked, descendants indented', async () => {
    const out = await ok(['snapshot', 'lineage', second]);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 3, out);
    assert.match(lines[0]!, new RegExp(`^  ${first}  \\S+ ago  step=one, note=a=b$`));
    assert.match(lines[1]!, new RegExp(`^\\*   ${second}  \\S+ ago$`));
    assert.match(lines[2]!, /^ {6}snap-[0-9a-z]{16}  \S+ ago  step=branched$/);
    const json = JSON.parse(await ok(['snapshot', 'lineage', second, '--json'])) as { ancestors: Array<{ id: string }> };
    assert.deepEqual(json.ancestors.map((a) => a.id), [first]);
  });

  test('verify reports ok and exits 0', async () => {
    assert.match(await ok(['snapshot', 'verify']), /^checked \d+ blobs and \d+ snapshots: ok$/m);
  });

  test('rm without --cascade is refused with SNAPSHOT_IN_USE and exit 1; with it, every deleted id is printed', async () => {
    const refused = await faas(['snapshot', 'rm', first]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /^error: SNAPSHOT_IN_USE: snapshot snap-\S+ has 1 child snapshot\(s\); /);
    assert.doesNotMatch(refused.stderr, /\n\s+at /);

    const deleted = (await ok(['snapshot', 'rm', first, '--cascade'])).trim().split('\n');
    assert.equal(deleted.length, 3);
    assert.equal(deleted.at(-1), first);
    assert.equal((await client.instances.get(restored)).state, 'deleted');
    assert.equal(await ok(['snapshot', 'ls', '--instance', source.id]), 'ID  PARENT  INSTANCE  SIZE  FILES  CREATED  METADATA\n');
  });

  test('gc --grace-ms 0 frees the blobs of the deleted snapshots', async () => {
    const out = await ok(['snapshot', 'gc', '--grace-ms', '0']);
    const deleted = Number(/^deleted (\d+) of \d+ blobs? \(.* freed\); kept \d+; removed \d+ temp files? and \d+ trees?$/.exec(out.trim())?.[1]);
    assert.ok(deleted > 0, out);
    const json = JSON.parse(await ok(['snapshot', 'gc', '--grace-ms', '0', '--json'])) as { blobsDeleted: number };
    assert.equal(json.blobsDeleted, 0);
  });

  test('unknown and malformed refs: SNAPSHOT_NOT_FOUND or INVALID_HASH on stderr, exit 1', async () => {
    const missing = await faas(['snapshot', 'show', 'snap-0000000000000000']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: SNAPSHOT_NOT_FOUND: no snapshot snap-0000000000000000\n$/);
    const malformed = await faas(['branch', 'not-a-hash']);
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /^error: INVALID_HASH: /);
    const noTarget = await faas(['snapshot', 'create', 'inst-does-not-exist']);
    assert.equal(noTarget.code, 1);
    assert.match(noTarget.stderr, /^error: INSTANCE_NOT_FOUND: /);
  });
});
