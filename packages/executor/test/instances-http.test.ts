import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { defaultConfig } from '../src/config.ts';
import { until } from './fixtures/wait.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/** End-to-end: instance lifecycle, execs in a long-lived instance, timeouts and the kill API. */

let server: TestServer;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server.close();
});

type Res = { status: number; body: any; text: string };

function assertErrorBody(res: Res, status: number, code: string): Record<string, unknown> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.deepEqual(Object.keys(res.body), ['error']);
  assert.equal(res.body.error.code, code);
  assert.equal(typeof res.body.error.message, 'string');
  return res.body.error.details ?? {};
}

async function createInstance(body: Record<string, unknown> = {}): Promise<any> {
  const res = await server.request('POST', '/api/v1/instances', body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function exec(instanceId: string, body: Record<string, unknown>): Promise<any> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, body);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function execBackground(instanceId: string, body: Record<string, unknown>): Promise<string> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { ...body, background: true });
  assert.equal(res.status, 202, res.text);
  return res.body.id;
}

const finishedExecution = (id: string) =>
  until(`execution ${id} to finish`, async () => {
    const res = await server.request('GET', `/api/v1/executions/${id}`);
    return res.body.status !== 'running' ? res.body : undefined;
  });

/** Host processes whose argv is exactly `argv` (the sandbox shares the host's kernel). */
function hostProcesses(argv: string[]): number[] {
  const wanted = `${argv.join('\0')}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8') === wanted) found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

const isoTime = (value: unknown) => typeof value === 'string' && !Number.isNaN(Date.parse(value)) && new Date(value).toISOString() === value;
const tag = () => randomBytes(5).toString('hex');

describe('instances: create, get, list, delete', () => {
  it('POST /instances answers 201 with a running instance and the default limits', async () => {
    const inst = await createInstance();
    const defaults = defaultConfig().defaults;
    assert.match(inst.id, /^inst-[0-9a-z]+$/);
    assert.equal(inst.state, 'running');
    assert.equal(inst.state_reason, null);
    assert.equal(inst.env, 'host');
    assert.equal(inst.runtime, 'bwrap');
    assert.deepEqual(inst.env_vars, {});
    assert.deepEqual(inst.limits, { memory_mb: defaults.memoryMb, cpu_cores: defaults.cpuCores, pids_max: defaults.pidsMax });
    assert.deepEqual(inst.metadata, {});
    assert.ok(isoTime(inst.created_at), inst.created_at);
    assert.ok(isoTime(inst.started_at), inst.started_at);
    assert.ok(Date.parse(inst.started_at) >= Date.parse(inst.created_at));
    assert.equal(inst.stopped_at, null);
    assert.ok(Number.isInteger(inst.start_duration_ms) && inst.start_duration_ms >= 0, `start_duration_ms ${inst.start_duration_ms}`);
    await server.request('DELETE', `/api/v1/instances/${inst.id}`);
  });

  it('POST /instances keeps a client id, custom limits, env_vars and metadata', async () => {
    const id = `my-inst-${tag()}`;
    const inst = await createInstance({ id, limits: { memory_mb: 256, cpu_cores: 0.5, pids_max: 64 }, env_vars: { A: '1' }, metadata: { team: 'ünicode', purpose: 'test' } });
    assert.equal(inst.id, id);
    assert.deepEqual(inst.limits, { memory_mb: 256, cpu_cores: 0.5, pids_max: 64 });
    assert.deepEqual(inst.env_vars, { A: '1' });
    assert.deepEqual(inst.metadata, { team: 'ünicode', purpose: 'test' });
    const fetched = await server.request('GET', `/api/v1/instances/${id}`);
    assert.equal(fetched.status, 200);
    assert.deepEqual(fetched.body, inst);
    await server.request('DELETE', `/api/v1/instances/${id}`);
  });

  it('partial limits take the defaults for the rest', async () => {
    const inst = await createInstance({ limits: { memory_mb: 128 } });
    const defaults = defaultConfig().defaults;
    assert.deepEqual(inst.limits, { memory_mb: 128, cpu_cores: defaults.cpuCores, pids_max: defaults.pidsMax });
    await server.request('DELETE', `/api/v1/instances/${inst.id}`);
  });

  it('lists instances newest first, without deleted ones unless ?state=deleted', async () => {
    const older = await createInstance({ metadata: { list: 'older' } });
    const newer = await createInstance({ metadata: { list: 'newer' } });
    const listed = await server.request('GET', '/api/v1/instances');
    assert.equal(listed.status, 200);
    const ids: string[] = listed.body.instances.map((i: { id: string }) => i.id);
    assert.ok(ids.includes(older.id) && ids.includes(newer.id));
    assert.ok(ids.indexOf(newer.id) < ids.indexOf(older.id), 'newest first');
    assert.ok(listed.body.instances.every((i: { state: string }) => i.state !== 'deleted'));

    const limited = await server.request('GET', '/api/v1/instances?limit=1');
    assert.equal(limited.body.instances.length, 1);
    assert.equal(limited.body.instances[0].id, newer.id);

    await server.request('DELETE', `/api/v1/instances/${older.id}`);
    const afterDelete = await server.request('GET', '/api/v1/instances');
    const idsAfter: string[] = afterDelete.body.instances.map((i: { id: string }) => i.id);
    assert.ok(!idsAfter.includes(older.id), 'a deleted instance is not listed by default');
    assert.ok(idsAfter.includes(newer.id));

    const deleted = await server.request('GET', '/api/v1/instances?state=deleted');
    assert.equal(deleted.status, 200);
    assert.ok(deleted.body.instances.some((i: { id: string }) => i.id === older.id));
    assert.ok(deleted.body.instances.every((i: { state: string }) => i.state === 'deleted'));
    await server.request('DELETE', `/api/v1/instances/${newer.id}`);
  });

  it('DELETE answers the deleted instance, is idempotent, and GET still finds it', async () => {
    const inst = await createInstance();
    const first = await server.request('DELETE', `/api/v1/instances/${inst.id}`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.id, inst.id);
    assert.equal(first.body.state, 'deleted');
    assert.equal(first.body.state_reason, 'deleted');
    assert.ok(isoTime(first.body.stopped_at));
    const second = await server.request('DELETE', `/api/v1/instances/${inst.id}`);
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(second.body, first.body);
    const fetched = await server.request('GET', `/api/v1/instances/${inst.id}`);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.body.state, 'deleted');
  });

  it('DELETE kills running executions: they end "killed" and their processes are gone', async () => {
    const inst = await createInstance();
    const marker = `61.${Date.now() % 100_000}`;
    const execId = await execBackground(inst.id, { command: ['sleep', marker] });
    await until('the sleep to run on the host', async () => (hostProcesses(['sleep', marker]).length > 0 ? true : undefined));
    const started = Date.now();
    const res = await server.request('DELETE', `/api/v1/instances/${inst.id}`);
    assert.equal(res.status, 200, res.text);
    assert.ok(Date.now() - started < 5000, 'DELETE does not wait for the execution to end by itself');
    const finished = await finishedExecution(execId);
    assert.equal(finished.status, 'completed');
    assert.equal(finished.exit_reason, 'killed');
    assert.equal(finished.exit_code, null);
    assert.deepEqual(hostProcesses(['sleep', marker]), []);
  });

  it('exec on a deleted instance answers 409 INSTANCE_NOT_RUNNING', async () => {
    const inst = await createInstance();
    await server.request('DELETE', `/api/v1/instances/${inst.id}`);
    const res = await server.request('POST', `/api/v1/instances/${inst.id}/exec`, { code: 'echo hi' });
    const details = assertErrorBody(res, 409, 'INSTANCE_NOT_RUNNING');
    assert.equal(details.instance_id, inst.id);
    assert.equal(details.state, 'deleted');
  });

  it('GET /instances/:id/executions lists the executions newest first', async () => {
    const inst = await createInstance();
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await exec(inst.id, { code: `echo ${n}` })).id);
    const res = await server.request('GET', `/api/v1/instances/${inst.id}/executions`);
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.executions.map((e: { id: string }) => e.id),
      [...ids].reverse(),
    );
    assert.deepEqual(
      res.body.executions.map((e: { stdout: string }) => e.stdout),
      ['3\n', '2\n', '1\n'],
    );
    assert.ok(res.body.executions.every((e: { instance_id: string }) => e.instance_id === inst.id));
    await server.request('DELETE', `/api/v1/instances/${inst.id}`);
  });
});

describe('execs in a long-lived instance', () => {
  let instanceId: string;

  before(async () => {
    instanceId = (await createInstance()).id;
  });

  after(async () => {
    await server.request('DELETE', `/api/v1/instances/${instanceId}`);
  });

  it('a background server started by one exec keeps running and is reachable from the next', async () => {
    const started = Date.now();
    const first = await exec(instanceId, { code: 'echo marker > /workspace/from-exec-1.txt; python3 -m http.server 8000 >/dev/null 2>&1 &' });
    const elapsed = Date.now() - started;
    assert.equal(first.exit_code, 0, first.stderr);
    assert.ok(elapsed < 2500, `exec 1 took ${elapsed} ms; it must not wait for its background process`);

    const fetchCode = [
      'import time, urllib.request',
      'deadline = time.time() + 3',
      'while True:',
      '    try:',
      "        r = urllib.request.urlopen('http://127.0.0.1:8000/from-exec-1.txt', timeout=1)",
      '        print(r.status, r.read().decode().strip())',
      '        break',
      '    except Exception:',
      '        if time.time() > deadline: raise',
      '        time.sleep(0.05)',
    ].join('\n');
    const second = await exec(instanceId, { language: 'python', code: fetchCode });
    assert.equal(second.exit_code, 0, second.stderr);
    assert.equal(second.stdout, '200 marker\n');

    const third = await exec(instanceId, { code: 'ps -eo args; cat /workspace/from-exec-1.txt' });
    assert.equal(third.exit_code, 0, third.stderr);
    const lines = third.stdout.split('\n');
    assert.ok(lines.includes('python3 -m http.server 8000'), third.stdout);
    assert.equal(lines.at(-2), 'marker');
  });

  it('an exec whose background child keeps stdout open still completes promptly with its own output', async () => {
    const started = Date.now();
    const result = await exec(instanceId, { code: 'sleep 30 & echo done' });
    const elapsed = Date.now() - started;
    assert.equal(result.exit_code, 0);
    assert.equal(result.exit_reason, 'exited');
    assert.equal(result.stdout, 'done\n');
    assert.ok(elapsed < 3000, `exec took ${elapsed} ms`);
  });

  it('timeout_ms kills the whole process tree: exit_reason "timeout" and no process left', async () => {
    // `sleep 100`, with a fraction unique to this run so host processes of others never match.
    const sleep = `100.${Date.now() % 100_000}`;
    const started = Date.now();
    const result = await exec(instanceId, { command: ['sh', '-c', `sleep ${sleep} & sleep ${sleep}`], timeout_ms: 500 });
    const elapsed = Date.now() - started;
    assert.equal(result.exit_reason, 'timeout');
    assert.equal(result.exit_code, null);
    assert.ok(result.duration_ms >= 500, `duration_ms ${result.duration_ms}`);
    assert.ok(elapsed < 5000, `the timed-out exec answered after ${elapsed} ms`);
    const ps = await exec(instanceId, { command: ['ps', '-eo', 'args'] });
    assert.ok(ps.stdout.includes('ps -eo args'), ps.stdout);
    assert.ok(!ps.stdout.split('\n').includes(`sleep ${sleep}`), `left behind:\n${ps.stdout}`);
    assert.deepEqual(hostProcesses(['sleep', sleep]), []);
  });

  it('files written by one exec are seen by the next', async () => {
    const write = await exec(instanceId, { code: 'printf persisted > /workspace/note.txt && mkdir -p "$HOME/dir" && echo x > "$HOME/dir/f"' });
    assert.equal(write.exit_code, 0, write.stderr);
    const result = await exec(instanceId, { code: 'cat /workspace/note.txt "$HOME/dir/f"' });
    assert.equal(result.stdout, 'persistedx\n');
  });

  it('exec with a client id: a retry of the same request gets the same execution, another request with the id 409 ID_CONFLICT', async () => {
    const id = `exec-retry-${tag()}`;
    const body = { id, code: 'date +%s%N' };
    const first = await exec(instanceId, body);
    const retry = await exec(instanceId, body);
    assert.equal(first.id, id);
    assert.equal(retry.id, id);
    assert.equal(retry.started_at, first.started_at);
    assert.equal(retry.stdout, first.stdout);
    const listed = await server.request('GET', `/api/v1/instances/${instanceId}/executions`);
    assert.equal(listed.body.executions.filter((e: { id: string }) => e.id === id).length, 1, 'run once');

    const other = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { id, code: 'echo different' });
    assert.equal(assertErrorBody(other, 409, 'ID_CONFLICT').id, id);
    const elsewhere = await createInstance();
    try {
      const res = await server.request('POST', `/api/v1/instances/${elsewhere.id}/exec`, body);
      assertErrorBody(res, 409, 'ID_CONFLICT');
    } finally {
      await server.request('DELETE', `/api/v1/instances/${elsewhere.id}`);
    }
  });

  it('/tmp and /var/tmp are world-writable sticky directories the sandbox user can write to', async () => {
    const result = await exec(instanceId, { code: 'stat -c %a /tmp /var/tmp; echo x > /tmp/f && echo y > /var/tmp/f && cat /tmp/f /var/tmp/f' });
    assert.equal(result.stdout, '1777\n1777\nx\ny\n', result.stderr);
    assert.equal(result.exit_code, 0);
  });
});

describe('kill API', () => {
  let instanceId: string;

  before(async () => {
    instanceId = (await createInstance()).id;
  });

  after(async () => {
    await server.request('DELETE', `/api/v1/instances/${instanceId}`);
  });

  it('POST /executions/:id/kill ends a running execution and answers it with exit_reason "killed"', async () => {
    const id = await execBackground(instanceId, { command: ['sleep', '60'] });
    const running = await server.request('GET', `/api/v1/executions/${id}`);
    assert.equal(running.body.status, 'running');
    assert.equal(running.body.exit_reason, null);
    const started = Date.now();
    const res = await server.request('POST', `/api/v1/executions/${id}/kill`);
    assert.equal(res.status, 200, res.text);
    assert.ok(Date.now() - started < 5000);
    assert.equal(res.body.id, id);
    assert.equal(res.body.status, 'completed');
    assert.equal(res.body.exit_reason, 'killed');
    assert.equal(res.body.exit_code, null);
    assert.equal(res.body.signal, 'SIGKILL');
  });

  it('kill with SIGTERM and grace_ms lets the process handle it: its exit code is kept, exit_reason "killed"', async () => {
    const id = await execBackground(instanceId, { code: "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done" });
    await until('the trap to be installed', async () => {
      const res = await server.request('GET', `/api/v1/executions/${id}`);
      return res.body.stdout.includes('ready') ? true : undefined;
    });
    const res = await server.request('POST', `/api/v1/executions/${id}/kill`, { signal: 'SIGTERM', grace_ms: 2000 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.exit_code, 7);
    assert.equal(res.body.exit_reason, 'killed');
    assert.equal(res.body.stdout, 'ready\ngot-term\n');
  });

  it('kill after grace_ms SIGKILLs a process that ignores SIGTERM', async () => {
    const id = await execBackground(instanceId, { code: "trap '' TERM; echo ready; while :; do sleep 0.1; done" });
    await until('the trap to be installed', async () => {
      const res = await server.request('GET', `/api/v1/executions/${id}`);
      return res.body.stdout.includes('ready') ? true : undefined;
    });
    const started = Date.now();
    const res = await server.request('POST', `/api/v1/executions/${id}/kill`, { signal: 'SIGTERM', grace_ms: 300 });
    const elapsed = Date.now() - started;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.exit_reason, 'killed');
    assert.equal(res.body.exit_code, null);
    assert.ok(elapsed >= 250 && elapsed < 5000, `kill answered after ${elapsed} ms`);
  });

  it('kill of a finished execution answers 409 EXECUTION_FINISHED', async () => {
    const done = await exec(instanceId, { code: 'true' });
    const res = await server.request('POST', `/api/v1/executions/${done.id}/kill`);
    const details = assertErrorBody(res, 409, 'EXECUTION_FINISHED');
    assert.equal(details.execution_id, done.id);
    assert.equal(details.status, 'completed');
    const unchanged = await server.request('GET', `/api/v1/executions/${done.id}`);
    assert.equal(unchanged.body.exit_reason, 'exited');
  });

  it('kill of an unknown execution answers 404 EXECUTION_NOT_FOUND', async () => {
    const res = await server.request('POST', '/api/v1/executions/exec-doesnotexist00/kill');
    const details = assertErrorBody(res, 404, 'EXECUTION_NOT_FOUND');
    assert.equal(details.execution_id, 'exec-doesnotexist00');
  });
});
