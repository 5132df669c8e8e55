import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { detectCgroupLayout } from '../src/runtime/cgroups/layout.ts';
import { cgroupPrefixFor } from '../src/serve.ts';
import { waitFor } from './fixtures/wait.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/** Resource limits (pids, memory, CPU, time) and the clean-up of what an instance leaves on the host. */

interface ExecResult {
  id: string;
  status: string;
  exit_code: number | null;
  exit_reason: string;
  signal: string | null;
  stdout: string;
  stderr: string;
  duration_ms: number;
}

const layout = detectCgroupLayout();
const tag = randomBytes(4).readUInt32BE(0) % 100_000;
let server: TestServer;
let prefix: string;

before(async () => {
  // Servers of other data dirs on this host may hand out overlapping uids: a range of our own
  // lets "no process of this uid" speak about this file's instances only.
  server = await startTestServer({ uidBase: 400_000 + randomInt(0, 1_000_000) });
  prefix = cgroupPrefixFor(server.dataDir);
});

after(async () => {
  await server?.close();
  for (const h of layout.hierarchies) {
    try {
      rmdirSync(join(h.mountPoint, prefix));
    } catch {
      // absent, or not empty after a failure
    }
  }
});

async function createInstance(limits: Record<string, number> = {}): Promise<string> {
  const res = await server.request('POST', '/api/v1/instances', { limits });
  assert.equal(res.status, 201, res.text);
  return res.body.id as string;
}

async function exec(instanceId: string, body: Record<string, unknown>): Promise<ExecResult> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { timeout_ms: 30_000, ...body });
  assert.equal(res.status, 200, res.text);
  return res.body as ExecResult;
}

async function execute(body: Record<string, unknown>): Promise<ExecResult> {
  const res = await server.request('POST', '/api/v1/execute', { timeout_ms: 30_000, ...body });
  assert.equal(res.status, 200, res.text);
  return res.body as ExecResult;
}

async function deleteInstance(id: string): Promise<void> {
  const res = await server.request('DELETE', `/api/v1/instances/${id}`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.state, 'deleted');
}

/** The instance's cgroup dir in every hierarchy the server uses. */
const instanceGroups = (id: string) => layout.hierarchies.map((h) => join(h.mountPoint, prefix, id));
const pidsGroup = (id: string) => join(layout.byController.pids!.mountPoint, prefix, id);
/** Forks refused for the pids limit so far (`pids.events` "max N"), or undefined where the kernel has no such file. */
function pidsRefused(id: string): number | undefined {
  const events = join(pidsGroup(id), 'pids.events');
  if (!existsSync(events)) return undefined;
  return Number(/^max (\d+)$/m.exec(readFileSync(events, 'utf8'))?.[1] ?? 0);
}
/** The hierarchy where every execution has a group of its own (the one kills go through). */
const trackingGroup = (id: string) => join(layout.tracking.mountPoint, prefix, id);
/** Where the sandbox's init lives in a hierarchy: <instance>/init on v2, the instance group itself on v1. */
const initGroupOf = (dir: string) => (existsSync(join(dir, 'init')) ? join(dir, 'init') : dir);
const isInitGroup = (dir: string, group: string) => join(dir, group === '.' ? '' : group).replace(/\/$/, '') === initGroupOf(dir).replace(/\/$/, '');

function procsIn(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** Processes per sub-group (init, one per exec) of an instance in one hierarchy. */
function processesBySubgroup(dir: string): Record<string, number[]> {
  const out: Record<string, number[]> = { '.': procsIn(dir) };
  for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) out[d.name] = procsIn(join(dir, d.name));
  return out;
}

/**
 * Live host processes (zombies left out: they are dead, only not yet reaped; on this host pid 1
 * does not reap the sandbox inits it inherits).
 */
function hostProcesses(): Array<{ pid: number; uid: number; stat: string; args: string }> {
  return execFileSync('ps', ['-eo', 'pid=,uid=,stat=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(l)!;
      return { pid: Number(m[1]), uid: Number(m[2]), stat: m[3]!, args: m[4]! };
    })
    .filter((p) => !p.stat.startsWith('Z'));
}

/**
 * Processes of a host uid, once those killed have finished exiting: a sandbox's namespace init
 * leaves its cgroup before it is done tearing down its PID namespace, so allow it a moment.
 */
async function survivorsOfUid(uid: number): Promise<Array<{ pid: number; stat: string; args: string }>> {
  const of = () => hostProcesses().filter((p) => p.uid === uid);
  await waitFor(() => of().length === 0, 3000);
  return of().map(({ pid, stat, args }) => ({ pid, stat, args }));
}

/** Host uid of an instance: the owner of its workspace dir in its upper layer. */
const hostUidOf = (id: string) => statSync(join(server.dataDir, 'instances', id, 'upper', 'workspace')).uid;

/** Polls /health until `stop` resolves; returns the slowest answer in ms. */
async function probeHealth(stop: Promise<unknown>): Promise<{ slowestMs: number; answers: number }> {
  let done = false;
  void stop.finally(() => (done = true));
  let slowestMs = 0;
  let answers = 0;
  while (!done) {
    const started = Date.now();
    const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    await res.json();
    slowestMs = Math.max(slowestMs, Date.now() - started);
    answers++;
    await sleep(100);
  }
  return { slowestMs, answers };
}

describe('pids limit', () => {
  it('stops a python fork loop at pids_max 64: it times out, the server stays responsive and the instance is usable after', async () => {
    const id = await createInstance({ pids_max: 64, memory_mb: 2048 });
    try {
      assert.equal(readFileSync(join(pidsGroup(id), 'pids.max'), 'utf8').trim(), '64');
      const started = Date.now();
      const running = exec(id, {
        language: 'python',
        code: 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass',
        timeout_ms: 10_000,
      });
      const health = await probeHealth(running);
      const result = await running;
      const elapsed = Date.now() - started;
      assert.ok(['timeout', 'exited'].includes(result.exit_reason), `exit_reason ${result.exit_reason}`);
      assert.equal(result.exit_reason, 'timeout', 'the loop never ends by itself');
      assert.ok(elapsed < 15_000, `ended ${elapsed} ms after it started`);
      assert.ok(health.answers >= 5, `only ${health.answers} health answers in ${elapsed} ms`);
      assert.ok(health.slowestMs < 2000, `/health took ${health.slowestMs} ms during the fork loop`);
      const peak = Number(readFileSync(join(pidsGroup(id), 'pids.peak'), 'utf8'));
      assert.ok(peak >= 48 && peak <= 64, `pids.peak ${peak}: the loop must have run into the limit of 64 and not past it`);

      // The whole tree went with the timeout (killed processes may take a moment to be reaped).
      const execGroups = () => Object.entries(processesBySubgroup(trackingGroup(id))).filter(([g]) => !isInitGroup(trackingGroup(id), g));
      assert.ok(await waitFor(() => execGroups().every(([, pids]) => pids.length === 0), 5000), `processes left: ${JSON.stringify(execGroups())}`);
      const again = await exec(id, { code: 'echo alive' });
      assert.equal(again.stdout, 'alive\n', `the instance is usable again: ${again.stderr}`);
    } finally {
      await deleteInstance(id);
    }
  });

  it('contains a bash fork bomb at pids_max 64: the exec ends, the server and other instances keep working, deletion ends the bomb', async () => {
    const id = await createInstance({ pids_max: 64 });
    const hostUid = hostUidOf(id);
    let deleted = false;
    try {
      const started = Date.now();
      const result = await exec(id, { language: 'bash', code: ':(){ :|:& };:', timeout_ms: 10_000 });
      assert.ok(['timeout', 'exited'].includes(result.exit_reason), `exit_reason ${result.exit_reason}`);
      assert.ok(Date.now() - started < 15_000);
      // The bomb goes on in the background of the instance, bounded by its pids limit (it may
      // also die out by itself when every fork of a generation is refused at once).
      const health = await probeHealth(sleep(2000));
      assert.ok(health.slowestMs < 2000, `/health took ${health.slowestMs} ms while the bomb ran`);
      const current = Number(readFileSync(join(pidsGroup(id), 'pids.current'), 'utf8'));
      assert.ok(current <= 64, `pids.current ${current} must be bounded by 64`);
      const refused = pidsRefused(id);
      assert.ok(refused === undefined || refused > 0, `the limit was never reached (pids.events: max ${refused})`);

      const other = await createInstance();
      try {
        const ok = await exec(other, { code: 'echo ok' });
        assert.equal(ok.exit_code, 0, ok.stderr);
        assert.equal(ok.stdout, 'ok\n');
      } finally {
        await deleteInstance(other);
      }

      await deleteInstance(id);
      deleted = true;
      assert.deepEqual(await survivorsOfUid(hostUid), [], 'no process of the bombed instance survives its deletion');
    } finally {
      if (!deleted) await deleteInstance(id);
    }
  });
});

describe('memory limit', () => {
  const HOG = 'a = []\nwhile True:\n    a.append(bytearray(10 * 1024 * 1024))\n';

  it('ends a memory hog at memory_mb 64 with exit_reason oom within 10 s', async () => {
    const started = Date.now();
    const result = await execute({ language: 'python', code: HOG, memory_mb: 64 });
    const elapsed = Date.now() - started;
    assert.equal(result.exit_reason, 'oom', JSON.stringify(result));
    assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
  });

  it('reports oom when a child is OOM-killed under a shell that survives it', async () => {
    const result = await execute({ code: `cat > /workspace/hog.py <<'EOF'\n${HOG}EOF\npython3 /workspace/hog.py; echo after`, memory_mb: 64 });
    assert.equal(result.stdout, 'after\n', 'the shell outlived its child');
    assert.equal(result.exit_reason, 'oom', JSON.stringify(result));
  });
});

describe('cpu limit', () => {
  it('holds a busy loop at cpu_cores 0.2 to about 0.2 s of CPU per second of wall time', async () => {
    const code = [
      'import time',
      'wall = time.monotonic()',
      'cpu = time.process_time()',
      'while time.monotonic() - wall < 1.0:',
      '    pass',
      'print(round(time.process_time() - cpu, 3), round(time.monotonic() - wall, 3))',
    ].join('\n');
    const result = await execute({ language: 'python', code, cpu_cores: 0.2 });
    assert.equal(result.exit_code, 0, result.stderr);
    const [cpuSeconds, wallSeconds] = result.stdout.trim().split(' ').map(Number);
    assert.ok(wallSeconds! >= 1.0);
    assert.ok(cpuSeconds! > 0.02, `the loop ran: ${cpuSeconds} s`);
    assert.ok(cpuSeconds! < 0.45, `used ${cpuSeconds} s of CPU in ${wallSeconds} s with cpu_cores 0.2`);
  });
});

describe('timeout', () => {
  it('kills the whole tree on timeout: no sleep left on the host and nothing but the init in the instance cgroup', async () => {
    const id = await createInstance();
    try {
      const mark = `100.${tag}`;
      const started = Date.now();
      const result = await exec(id, { code: `sleep ${mark} & sleep ${mark}`, timeout_ms: 500 });
      assert.equal(result.exit_reason, 'timeout');
      assert.equal(result.exit_code, null);
      assert.ok(Date.now() - started < 5000);
      const left = hostProcesses().filter((p) => p.args.includes(`sleep ${mark}`));
      assert.deepEqual(left, [], 'no sleep of the execution survives on the host');
      for (const dir of instanceGroups(id)) {
        const groups = processesBySubgroup(dir);
        for (const [group, pids] of Object.entries(groups)) if (!isInitGroup(dir, group)) assert.deepEqual(pids, [], `${dir}/${group} still holds processes`);
        assert.equal(existsSync(join(dir, result.id)), false, `the execution's cgroup ${join(dir, result.id)} was not removed`);
      }
      // The init group holds only the sandbox's own init: bwrap (host side and pid 1) and its sleep.
      const initArgs = procsIn(initGroupOf(pidsGroup(id))).map((pid) => hostProcesses().find((p) => p.pid === pid)?.args ?? '');
      assert.ok(initArgs.every((a) => /bwrap|sleep infinity/.test(a)), `unexpected init processes: ${initArgs.join(' | ')}`);
    } finally {
      await deleteInstance(id);
    }
  });
});

describe('instance deletion', () => {
  it('leaves no mount, cgroup, directory or process of the instance on the host', async () => {
    const id = await createInstance();
    const mark = `1000.${tag}`;
    const bg = await exec(id, { code: `sleep ${mark} >/dev/null 2>&1 & echo data > /workspace/file` });
    assert.equal(bg.exit_code, 0, bg.stderr);
    const hostUid = hostUidOf(id);
    const instanceDir = join(server.dataDir, 'instances', id);
    const mountsOf = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(`${instanceDir}/`));
    // Preconditions: everything below exists before the deletion.
    assert.equal(mountsOf().length, 1, 'the overlay is mounted');
    for (const dir of instanceGroups(id)) assert.ok(existsSync(dir), dir);
    assert.ok(hostProcesses().some((p) => p.uid === hostUid && p.args.includes(`sleep ${mark}`)), 'the background sleep runs as the host uid');

    await deleteInstance(id);

    assert.deepEqual(mountsOf(), [], 'mounts left under the instance dir');
    const instancesRoot = `${join(server.dataDir, 'instances')}/`;
    const anyUnderInstances = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4]?.startsWith(instancesRoot));
    assert.deepEqual(anyUnderInstances, [], 'no other instance of this file is alive, so no mount at all remains');
    for (const dir of instanceGroups(id)) assert.equal(existsSync(dir), false, `cgroup ${dir} remains`);
    assert.equal(existsSync(instanceDir), false, 'the instance directory remains');
    assert.deepEqual(await survivorsOfUid(hostUid), [], 'a process of the instance uid survives');
    const got = await server.request('GET', `/api/v1/instances/${id}`);
    assert.equal(got.body.state, 'deleted');
  });
});
