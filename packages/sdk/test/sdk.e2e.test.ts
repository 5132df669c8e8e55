/**
 * The SDK against a real executor (sandboxed processes, real HTTP, real SSE).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { FaaSPlatformClient, isFaasError, type ExecutionEvent } from '../src/index.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;

before(async () => {
  server = await startTestServer();
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
});

after(async () => {
  await server?.close();
});

describe('one-shot executions', () => {
  test('execute runs code and returns its output and a finished record', async () => {
    const result = await client.execute({ code: 'echo hello' });
    assert.equal(result.stdout, 'hello\n');
    assert.equal(result.status, 'completed');
    assert.equal(result.exitReason, 'exited');
    assert.equal(result.exitCode, 0);
    assert.match(result.id, /^exec-/);
    assert.ok(result.startedAt instanceof Date);
    assert.ok(result.finishedAt instanceof Date);
    assert.equal(result.stdoutBytes, 6);
  });

  test('stdout and stderr are kept apart', async () => {
    const result = await client.execute({ command: ['sh', '-c', 'echo out; echo err >&2'] });
    assert.equal(result.stdout, 'out\n');
    assert.equal(result.stderr, 'err\n');
  });

  test('the exit code comes back as is', async () => {
    assert.equal((await client.execute({ code: 'exit 3' })).exitCode, 3);
    assert.equal((await client.executeEphemeral('false')).exitCode, 1);
  });

  test('stdin reaches the process', async () => {
    const result = await client.execute({ command: ['cat'], stdin: 'from stdin\n' });
    assert.equal(result.stdout, 'from stdin\n');
  });

  test('environment variables reach the process', async () => {
    const result = await client.execute({ code: 'echo "$GREETING $NAME"', envVars: { GREETING: 'hello', NAME: 'world' } });
    assert.equal(result.stdout, 'hello world\n');
  });

  test('the working directory is the one asked for', async () => {
    const result = await client.execute({ command: ['pwd'], workingDir: '/tmp' });
    assert.equal(result.stdout, '/tmp\n');
    assert.equal(result.workingDir, '/tmp');
  });

  test('a caller-given id names the execution', async () => {
    const id = `exec-e2e-${Date.now()}`;
    const result = await client.execute({ id, code: 'true' });
    assert.equal(result.id, id);
    assert.equal((await client.getExecution(id)).id, id);
  });

  test('a timeout ends the execution with exitReason timeout', async () => {
    const result = await client.execute({ command: ['sleep', '30'], timeoutMs: 500 });
    assert.equal(result.exitReason, 'timeout');
    assert.equal(result.exitCode, null);
  });
});

describe('executeWithCallbacks', () => {
  test('delivers output chunks live, in order, and resolves with the full result', async () => {
    const chunks: string[] = [];
    const arrivals: number[] = [];
    const started = Date.now();
    const result = await client.executeWithCallbacks(
      { code: 'echo one; sleep 0.4; echo two >&2; sleep 0.4; echo three' },
      {
        onStdout: (text) => {
          chunks.push(`out:${text}`);
          arrivals.push(Date.now() - started);
        },
        onStderr: (text) => {
          chunks.push(`err:${text}`);
          arrivals.push(Date.now() - started);
        },
      },
    );
    assert.deepEqual(chunks, ['out:one\n', 'err:two\n', 'out:three\n']);
    // Live, not replayed at the end: the first chunk came well before the last.
    assert.ok((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0) >= 500, `arrivals ${arrivals.join(',')}`);
    assert.equal(result.stdout, 'one\nthree\n');
    assert.equal(result.stderr, 'two\n');
    assert.equal(result.exitCode, 0);
    assert.equal(result.status, 'completed');
  });

  test('reports progress written to FAAS_PROGRESS_FD', async () => {
    const reports: number[] = [];
    await client.executeWithCallbacks({ code: 'echo "40 half" >&3; echo 100 >&3' }, { onProgress: (progress) => reports.push(progress) });
    assert.deepEqual(reports, [40, 100]);
  });
});

describe('instances', () => {
  test('create, exec, list and delete', async () => {
    const instance = await client.instances.create({ envVars: { FROM_INSTANCE: 'yes' } });
    try {
      assert.equal(instance.state, 'running');
      assert.ok(instance.createdAt instanceof Date);
      assert.equal(typeof instance.limits.memoryMb, 'number');

      await instance.exec({ code: 'echo kept > /workspace/file' });
      const read = await client.instances.exec(instance.id, { code: 'cat /workspace/file; echo $FROM_INSTANCE' });
      assert.equal(read.stdout, 'kept\nyes\n');
      assert.equal(read.instanceId, instance.id);

      const listed = await client.instances.list();
      assert.ok(listed.some((i) => i.id === instance.id));
    } finally {
      await instance.delete();
    }
    assert.equal(instance.state, 'deleted');
    assert.ok(!(await client.instances.list()).some((i) => i.id === instance.id));
    assert.equal((await client.instances.get(instance.id)).state, 'deleted');
  });

  test('an unknown instance id is a FaasError INSTANCE_NOT_FOUND with status 404', async () => {
    await assert.rejects(client.instances.get('inst-does-not-exist'), (error: unknown) => {
      return isFaasError(error) && error.code === 'INSTANCE_NOT_FOUND' && error.status === 404;
    });
    await assert.rejects(client.instances.exec('inst-does-not-exist', { command: ['true'] }), (error: unknown) => {
      return isFaasError(error) && error.code === 'INSTANCE_NOT_FOUND';
    });
  });

  test('streamExecution follows a background exec to its end; handle.wait gives the result', async () => {
    const instance = await client.instances.create();
    try {
      const handle = await instance.start({ code: 'for i in 1 2 3; do echo line $i; sleep 0.1; done; exit 4' });
      const events: ExecutionEvent[] = [];
      for await (const event of client.streamExecution(handle.id)) events.push(event);
      assert.deepEqual(events.map((e) => e.seq), events.map((_e, index) => index + 1));
      const text = events.map((e) => (e.type === 'output' ? e.data : '')).join('');
      assert.equal(text, 'line 1\nline 2\nline 3\n');
      const last = events.at(-1);
      assert.equal(last?.type, 'completed');
      assert.equal(last?.type === 'completed' && last.exitCode, 4);

      const result = await handle.wait();
      assert.equal(result.exitCode, 4);
      assert.equal(result.lastSeq, last?.seq);

      // Reattaching after a seq yields exactly the rest.
      const rest: ExecutionEvent[] = [];
      for await (const event of handle.events({ after: 2 })) rest.push(event);
      assert.deepEqual(rest.map((e) => e.seq), events.slice(2).map((e) => e.seq));
    } finally {
      await instance.delete();
    }
  });

  test('kill ends a background exec with exitReason killed', async () => {
    const instance = await client.instances.create();
    try {
      const handle = await instance.start({ command: ['sleep', '60'] });
      const killed = await handle.kill();
      assert.equal(killed.exitReason, 'killed');
      assert.equal((await handle.wait()).exitReason, 'killed');
    } finally {
      await instance.delete();
    }
  });
});

describe('system', () => {
  test('health answers ok with a version', async () => {
    const health = await client.health();
    assert.equal(health.status, 'ok');
    assert.equal(typeof health.version, 'string');
  });

  test('a wrong key is a FaasError INVALID_API_KEY', async () => {
    const wrong = new FaaSPlatformClient({ platformUrl: server.url, apiKey: 'wrong' });
    await assert.rejects(wrong.instances.list(), (error: unknown) => isFaasError(error) && error.code === 'INVALID_API_KEY' && error.status === 401);
  });
});
