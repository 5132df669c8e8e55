/**
 * The `faas` binary against a real executor: spawned as a user would run it, talking to the
 * server through FAAS_URL / FAAS_API_KEY.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FaaSPlatformClient } from '@faas/sdk';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { runFaas, type Run } from './fixtures/run-cli.ts';


let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;

before(async () => {
  server = await startTestServer();
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
});

after(async () => {
  await server?.close();
});

function faas(args: string[], options: { input?: string } = {}): Promise<Run> {
  return runFaas(server, args, options);
}

describe('faas exec', () => {
  test('prints stdout and stderr to their streams and exits with the command code', async () => {
    const run = await faas(['exec', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(run.stdout, 'out\n');
    assert.equal(run.stderr, 'err\n');
    assert.equal(run.code, 3);
  });

  test('-e NAME=VALUE reaches the process', async () => {
    const run = await faas(['exec', '-e', 'GREETING=hello', '-e', 'EQ=a=b', '--', 'sh', '-c', 'echo "$GREETING $EQ"']);
    assert.equal(run.stdout, 'hello a=b\n');
    assert.equal(run.code, 0);
  });

  test('one argument with spaces runs as a shell string', async () => {
    const run = await faas(['exec', '--', 'echo hi | tr a-z A-Z']);
    assert.equal(run.stdout, 'HI\n');
    assert.equal(run.code, 0);
  });

  test('--stdin sends the standard input to the process', async () => {
    const run = await faas(['exec', '--stdin', '--', 'wc', '-c'], { input: 'twelve bytes' });
    assert.equal(run.stdout.trim(), '12');
  });

  test('a timeout exits 124 with a message on stderr', async () => {
    const run = await faas(['exec', '--timeout', '500', '--', 'sleep', '30']);
    assert.equal(run.code, 124);
    assert.match(run.stderr, /timed out/);
  });
});

describe('faas instances', () => {
  test('create, exec in it, list it, remove it', async () => {
    const created = await faas(['instances', 'create', '-e', 'FROM_INSTANCE=yes']);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    assert.match(id, /^[a-z0-9][a-z0-9-]{2,62}$/);

    const exec = await faas(['instances', 'exec', id, '--', 'sh', '-c', 'echo "in $FROM_INSTANCE"; echo oops >&2; exit 5']);
    assert.equal(exec.stdout, 'in yes\n');
    assert.equal(exec.stderr, 'oops\n');
    assert.equal(exec.code, 5);

    const listed = await faas(['instances', 'ls']);
    assert.equal(listed.code, 0);
    assert.match(listed.stdout, /^ID\s+STATE\s+ENV\s+CREATED\s+LIMITS/);
    const row = listed.stdout.split('\n').find((line) => line.startsWith(id));
    assert.ok(row, listed.stdout);
    assert.match(row, /running/);

    const json = await faas(['instances', 'ls', '--json']);
    assert.ok((JSON.parse(json.stdout) as { id: string }[]).some((instance) => instance.id === id));

    const removed = await faas(['instances', 'rm', id]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, `${id}\n`);
    assert.ok(!(await faas(['instances', 'ls'])).stdout.includes(id));
  });

  test('an unknown instance prints error: INSTANCE_NOT_FOUND and exits 1, without a stack', async () => {
    const run = await faas(['instances', 'exec', 'inst-does-not-exist', '--', 'true']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: INSTANCE_NOT_FOUND: /);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  });
});

describe('faas logs', () => {
  test('reprints the output of an execution, each stream to its own', async () => {
    const result = await client.execute({ code: 'echo first; echo second >&2; echo third; exit 2' });
    const run = await faas(['logs', result.id]);
    assert.equal(run.code, 0);
    assert.equal(run.stdout, 'first\nthird\n');
    assert.equal(run.stderr, 'second\n');
  });

  test('--follow streams until the end and exits with the execution code', async () => {
    const instance = await client.instances.create();
    try {
      const handle = await instance.start({ code: 'echo start; sleep 0.5; echo end; exit 6' });
      const run = await faas(['logs', handle.id, '--follow']);
      assert.equal(run.stdout, 'start\nend\n');
      assert.equal(run.code, 6);
    } finally {
      await instance.delete();
    }
  });

  test('faas exec --print-id names the execution on stderr, and faas logs finds it by that id', async () => {
    const run = await faas(['exec', '--print-id', '--', 'sh', '-c', 'echo logged']);
    assert.equal(run.code, 0, run.stderr);
    const id = /^execution (exec-[a-z0-9]+)$/m.exec(run.stderr)?.[1];
    assert.ok(id, `no execution id in stderr: ${run.stderr}`);
    const logs = await faas(['logs', id]);
    assert.equal(logs.stdout, 'logged\n');
  });

  test('--after skips the events up to that seq', async () => {
    const result = await client.execute({ code: 'echo a; sleep 0.1; echo b' });
    const run = await faas(['logs', result.id, '--after', '1']);
    assert.equal(run.stdout, 'b\n');
  });
});
