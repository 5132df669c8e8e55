import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ExecutionEvent, OutputEvent, ProgressEvent } from '@faas/protocol';
import { until } from './fixtures/wait.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/** End-to-end: executions over HTTP against a real server running bwrap sandboxes. */

let server: TestServer;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server.close();
});

async function execute(body: Record<string, unknown>) {
  const res = await server.request('POST', '/api/v1/execute', body);
  assert.equal(res.status, 200, `POST /execute answered ${res.status}: ${res.text}`);
  return res.body;
}

/** The whole event log of an execution (the SSE stream of a finished execution replays it and ends). */
async function eventsOf(executionId: string): Promise<ExecutionEvent[]> {
  const res = await fetch(`${server.url}/api/v1/executions/${executionId}/events`, { headers: { authorization: `Bearer ${server.apiKey}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  const events: ExecutionEvent[] = [];
  for (const block of text.split('\n\n')) {
    const data = block.split('\n').find((line) => line.startsWith('data: '));
    if (data !== undefined) events.push(JSON.parse(data.slice('data: '.length)) as ExecutionEvent);
  }
  return events;
}

const outputs = (events: ExecutionEvent[]) => events.filter((e): e is OutputEvent => e.type === 'output');
const progresses = (events: ExecutionEvent[]) => events.filter((e): e is ProgressEvent => e.type === 'progress');

function assertErrorBody(res: { status: number; body: any; text: string }, status: number, code: string): Record<string, unknown> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.deepEqual(Object.keys(res.body), ['error']);
  assert.equal(res.body.error.code, code);
  assert.equal(typeof res.body.error.message, 'string');
  return res.body.error.details ?? {};
}

const uniqueId = (prefix: string) => `${prefix}-${randomBytes(6).toString('hex')}`;

describe('POST /api/v1/execute round trip', () => {
  it('runs code with sh and answers the finished execution with its output', async () => {
    const exec = await execute({ code: 'echo hello' });
    assert.match(exec.id, /^exec-/);
    assert.match(exec.instance_id, /^inst-/);
    assert.equal(exec.status, 'completed');
    assert.deepEqual(exec.command, ['/bin/sh', '-c', 'echo hello']);
    assert.equal(exec.exit_code, 0);
    assert.equal(exec.exit_reason, 'exited');
    assert.equal(exec.signal, null);
    assert.equal(exec.stdout, 'hello\n');
    assert.equal(exec.stderr, '');
    assert.equal(exec.stdout_bytes, 6);
    assert.equal(exec.stderr_bytes, 0);
    assert.equal(exec.output_truncated, false);
    assert.equal(exec.last_seq, 2); // one output event, then completed
    assert.ok(!Number.isNaN(Date.parse(exec.started_at)));
    assert.ok(Date.parse(exec.finished_at) >= Date.parse(exec.started_at));
  });

  it('runs a command argv without a shell: arguments arrive verbatim', async () => {
    const exec = await execute({ command: ['printf', '%s|', 'a b', '$HOME', '*'] });
    assert.deepEqual(exec.command, ['printf', '%s|', 'a b', '$HOME', '*']);
    assert.equal(exec.exit_code, 0);
    assert.equal(exec.stdout, 'a b|$HOME|*|');
  });

  it('the ephemeral instance of /execute is deleted after the execution', async () => {
    const exec = await execute({ code: 'true' });
    const instance = await until('the ephemeral instance to be deleted', async () => {
      const res = await server.request('GET', `/api/v1/instances/${exec.instance_id}`);
      return res.body?.state === 'deleted' ? res.body : undefined;
    });
    assert.equal(instance.id, exec.instance_id);
  });

  it('keeps stdout and stderr separate', async () => {
    const exec = await execute({ code: 'echo out1; echo err1 >&2; echo out2; echo err2 >&2' });
    assert.equal(exec.stdout, 'out1\nout2\n');
    assert.equal(exec.stderr, 'err1\nerr2\n');
    assert.equal(exec.stdout_bytes, 10);
    assert.equal(exec.stderr_bytes, 10);
    const events = outputs(await eventsOf(exec.id));
    assert.equal(events.filter((e) => e.stream === 'stdout').map((e) => e.data).join(''), 'out1\nout2\n');
    assert.equal(events.filter((e) => e.stream === 'stderr').map((e) => e.data).join(''), 'err1\nerr2\n');
  });

  it('preserves the order of 2000 lines within each stream, in the result and in the event log', async () => {
    const exec = await execute({ code: 'seq 1 2000; seq 1 2000 >&2' });
    const expected = Array.from({ length: 2000 }, (_, i) => `${i + 1}\n`).join('');
    assert.equal(exec.stdout, expected);
    assert.equal(exec.stderr, expected);
    const events = outputs(await eventsOf(exec.id));
    assert.equal(events.filter((e) => e.stream === 'stdout').map((e) => e.data).join(''), expected);
    assert.equal(events.filter((e) => e.stream === 'stderr').map((e) => e.data).join(''), expected);
  });

  it('records the interleaving of stdout and stderr in event log order', async () => {
    const exec = await execute({ code: 'for i in 1 2 3 4 5; do echo out$i; sleep 0.05; echo err$i >&2; sleep 0.05; done' });
    const lines: string[] = [];
    for (const e of outputs(await eventsOf(exec.id))) {
      for (const line of e.data.split('\n').filter(Boolean)) lines.push(`${e.stream}:${line}`);
    }
    const expected = [1, 2, 3, 4, 5].flatMap((i) => [`stdout:out${i}`, `stderr:err${i}`]);
    assert.deepEqual(lines, expected);
  });

  for (const code of [0, 3, 255]) {
    it(`reports exit code ${code} with exit_reason "exited"`, async () => {
      const exec = await execute({ code: `exit ${code}` });
      assert.equal(exec.exit_code, code);
      assert.equal(exec.exit_reason, 'exited');
      assert.equal(exec.signal, null);
      const completed = (await eventsOf(exec.id)).at(-1)!;
      assert.equal(completed.type, 'completed');
      assert.equal(completed.type === 'completed' && completed.exit_code, code);
    });
  }

  it('a process killed by its own signal ends "signaled" with the signal named', async () => {
    const exec = await execute({ code: 'kill -TERM $$' });
    assert.equal(exec.exit_reason, 'signaled');
    assert.equal(exec.signal, 'SIGTERM');
    assert.equal(exec.exit_code, null);
  });

  it('delivers stdin to the process and closes it', async () => {
    const stdin = 'line one\nzwei: ü€\nlast line without newline';
    const exec = await execute({ command: ['cat'], stdin });
    assert.equal(exec.exit_code, 0);
    assert.equal(exec.stdout, stdin);
  });

  it('passes env_vars to the process', async () => {
    const exec = await execute({ code: 'printf "%s|%s" "$GREETING" "$EMPTY"', env_vars: { GREETING: 'hello there = yes', EMPTY: '' } });
    assert.equal(exec.stdout, 'hello there = yes|');
  });

  it("exec env_vars override the instance's env_vars, which still apply otherwise", async () => {
    const created = await server.request('POST', '/api/v1/instances', { env_vars: { A: 'instance-a', B: 'instance-b' } });
    assert.equal(created.status, 201, created.text);
    try {
      const res = await server.request('POST', `/api/v1/instances/${created.body.id}/exec`, { code: 'printf "%s %s %s" "$A" "$B" "$C"', env_vars: { B: 'exec-b', C: 'exec-c' } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.stdout, 'instance-a exec-b exec-c');
    } finally {
      await server.request('DELETE', `/api/v1/instances/${created.body.id}`);
    }
  });

  it('runs in /workspace by default and in working_dir when given', async () => {
    const dflt = await execute({ code: 'pwd' });
    assert.equal(dflt.stdout, '/workspace\n');
    assert.equal(dflt.working_dir, '/workspace');
    const tmp = await execute({ code: 'pwd', working_dir: '/tmp' });
    assert.equal(tmp.stdout, '/tmp\n');
    assert.equal(tmp.working_dir, '/tmp');
  });

  it('runs python code with python3', async () => {
    const exec = await execute({ language: 'python', code: 'import sys\nprint("py", sys.version_info[0], sum(range(5)))' });
    assert.equal(exec.exit_code, 0, exec.stderr);
    assert.equal(exec.command[0], 'python3');
    assert.equal(exec.stdout, 'py 3 10\n');
  });

  it('runs node code with node', async () => {
    const exec = await execute({ language: 'node', code: 'console.log("js", [1, 2, 3].map((x) => x * 2).join(","), typeof process.versions.node)' });
    assert.equal(exec.exit_code, 0, exec.stderr);
    assert.equal(exec.command[0], 'node');
    assert.equal(exec.stdout, 'js 2,4,6 string\n');
  });

  it('runs bash code with bash (bash-only syntax works)', async () => {
    const exec = await execute({ language: 'bash', code: 'a=(x y z); echo "${a[1]} ${#a[@]} ${BASH_VERSION:+bash}"' });
    assert.equal(exec.exit_code, 0, exec.stderr);
    assert.deepEqual(exec.command.slice(0, 2), ['/bin/bash', '-c']);
    assert.equal(exec.stdout, 'y 3 bash\n');
  });

  it('turns lines written to FAAS_PROGRESS_FD into progress events and keeps the last value', async () => {
    const exec = await execute({ code: 'echo "fd=$FAAS_PROGRESS_FD"; echo 40 compiling >&3; echo "not a number" >&3; echo 75 >&3; echo done' });
    assert.equal(exec.exit_code, 0, exec.stderr);
    assert.equal(exec.stdout, 'fd=3\ndone\n');
    const events = progresses(await eventsOf(exec.id));
    assert.deepEqual(
      events.map(({ progress, message }) => ({ progress, message })),
      [
        { progress: 40, message: 'compiling' },
        { progress: 75, message: undefined },
      ],
    );
    assert.equal(exec.progress, 75);
  });

  it('clamps progress numbers to 0-100', async () => {
    const exec = await execute({ code: 'echo "150 over" >&3; echo -5 >&3' });
    const events = progresses(await eventsOf(exec.id));
    assert.deepEqual(
      events.map((e) => e.progress),
      [100, 0],
    );
    assert.equal(exec.progress, 0);
  });

  it('sends output that is not valid UTF-8 as base64 with the exact bytes', async () => {
    const exec = await execute({ code: "printf '\\377\\376'" });
    assert.equal(exec.exit_code, 0);
    assert.equal(exec.stdout_bytes, 2);
    const events = outputs(await eventsOf(exec.id));
    assert.ok(events.length > 0);
    assert.ok(events.every((e) => e.encoding === 'base64'), JSON.stringify(events));
    const bytes = Buffer.concat(events.map((e) => Buffer.from(e.data, 'base64')));
    assert.deepEqual([...bytes], [0xff, 0xfe]);
  });

  it('a multi-byte character split across writes arrives as text, not base64', async () => {
    const code = ['import sys, time', 'out = sys.stdout.buffer', "out.write(b'\\xe2'); out.flush()", 'time.sleep(0.2)', "out.write(b'\\x82\\xac'); out.flush()"].join('\n');
    const exec = await execute({ language: 'python', code });
    assert.equal(exec.exit_code, 0, exec.stderr);
    assert.equal(exec.stdout, '€');
    const events = outputs(await eventsOf(exec.id));
    assert.ok(events.every((e) => e.encoding === undefined), JSON.stringify(events));
    assert.equal(events.map((e) => e.data).join(''), '€');
  });

  it('duration_ms is a measured positive integer', async () => {
    const quick = await execute({ code: 'true' });
    assert.ok(Number.isInteger(quick.duration_ms) && quick.duration_ms > 0, `duration_ms ${quick.duration_ms}`);
    const slow = await execute({ code: 'sleep 0.3' });
    assert.ok(Number.isInteger(slow.duration_ms), `duration_ms ${slow.duration_ms}`);
    assert.ok(slow.duration_ms >= 300 && slow.duration_ms < 10_000, `duration_ms ${slow.duration_ms} for sleep 0.3`);
    const completed = (await eventsOf(slow.id)).at(-1)!;
    assert.equal(completed.type === 'completed' && completed.duration_ms, slow.duration_ms);
  });
});

describe('POST /api/v1/execute idempotency and modes', () => {
  it('the same id and body twice returns the same execution, run once', async () => {
    const id = uniqueId('idem');
    const body = { id, code: 'echo once; date +%s%N' };
    const first = await execute(body);
    const second = await execute(body);
    assert.equal(first.id, id);
    assert.equal(second.id, id);
    assert.equal(second.instance_id, first.instance_id);
    assert.equal(second.started_at, first.started_at);
    assert.equal(second.stdout, first.stdout);
  });

  it('concurrent requests with the same id and body share one execution', async () => {
    const body = { id: uniqueId('idem'), code: 'date +%s%N' };
    const answers = await Promise.all([1, 2, 3].map(() => server.request('POST', '/api/v1/execute', body)));
    for (const res of answers) assert.equal(res.status, 200, res.text);
    const [first, ...rest] = answers.map((r) => r.body);
    for (const other of rest) {
      assert.equal(other.id, first.id);
      assert.equal(other.started_at, first.started_at);
      assert.equal(other.stdout, first.stdout);
    }
  });

  it('the same id with a different body answers 409 ID_CONFLICT', async () => {
    const id = uniqueId('idem');
    await execute({ id, code: 'echo a' });
    const res = await server.request('POST', '/api/v1/execute', { id, code: 'echo b' });
    assert.equal(assertErrorBody(res, 409, 'ID_CONFLICT').id, id);
  });

  it('every mode is served (their behaviour: execution-modes-http.test.ts)', async () => {
    const cached = await server.request('POST', '/api/v1/execute', { code: 'echo hi', mode: 'cached' });
    assert.equal(cached.status, 200, cached.text);
    assert.equal(cached.body.mode, 'cached');
    const checkpointed = await server.request('POST', '/api/v1/execute', { code: 'echo hi', mode: 'checkpointed' });
    assert.equal(checkpointed.status, 200, checkpointed.text);
    assert.match(checkpointed.body.snapshot_id, /^snap-/);
  });

  it('mode "ephemeral" given explicitly runs', async () => {
    const exec = await execute({ code: 'echo hi', mode: 'ephemeral' });
    assert.equal(exec.stdout, 'hi\n');
  });

  it('background: true answers 202 with the stream urls and deletes the instance when the execution ends', async () => {
    const res = await server.request('POST', '/api/v1/execute', { code: 'sleep 0.3; echo bg', background: true });
    assert.equal(res.status, 202, res.text);
    const { id, instance_id } = res.body;
    assert.equal(res.body.status, 'running');
    assert.equal(res.body.events_url, `/api/v1/executions/${id}/events`);
    assert.equal(res.body.stream_url, `/api/v1/stream/${id}`);
    const running = await server.request('GET', `/api/v1/instances/${instance_id}`);
    assert.equal(running.body.state, 'running');

    const finished = await until('the background execution to finish', async () => {
      const r = await server.request('GET', `/api/v1/executions/${id}`);
      return r.body.status === 'completed' ? r.body : undefined;
    });
    assert.equal(finished.stdout, 'bg\n');
    assert.equal(finished.exit_code, 0);
    await until('the instance to be deleted', async () => {
      const r = await server.request('GET', `/api/v1/instances/${instance_id}`);
      return r.body.state === 'deleted' ? true : undefined;
    });
  });
});
