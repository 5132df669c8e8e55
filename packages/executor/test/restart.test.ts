import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { detectCgroupLayout } from '../src/runtime/cgroups/layout.ts';
import { cgroupPrefixFor } from '../src/serve.ts';
import { forceCleanup } from './fixtures/force-cleanup.ts';
import { startServerProcess, type ServerProcess } from './fixtures/test-server.ts';
import { waitFor } from './fixtures/wait.ts';

/**
 * The server as a child process: killed with SIGKILL mid-execution, then started again on the
 * same data dir; and stopped gracefully with SIGTERM. Checks the records, the event logs and
 * what is left on the host (mounts, cgroups, processes).
 */

interface SseEvent {
  id?: string;
  event: string;
  data: Record<string, any>;
}

const layout = detectCgroupLayout();
const dataDirs: string[] = [];
const servers: ServerProcess[] = [];

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'faas-restart-'));
  dataDirs.push(dir);
  return dir;
}

async function start(dataDir: string, apiKey: string): Promise<ServerProcess> {
  const server = await startServerProcess({ dataDir, apiKey });
  servers.push(server);
  return server;
}

/** Mount points under a directory, from this process's mountinfo. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(`${dir}/`));
}

/** The cgroup dirs the server of `dataDir` uses for an instance, one per hierarchy. */
function groupDirs(dataDir: string, instanceId: string): string[] {
  return layout.hierarchies.map((h) => join(h.mountPoint, cgroupPrefixFor(dataDir), instanceId));
}

/** Instance groups under the server's own cgroup dir, in every hierarchy. */
function instanceGroupsOf(dataDir: string): string[] {
  return layout.hierarchies.flatMap((h) => {
    const dir = join(h.mountPoint, cgroupPrefixFor(dataDir));
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(dir, d.name));
  });
}

/** Live (not zombie) host processes whose command line contains `text`. */
function liveProcessesWith(text: string): string[] {
  return execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(text) && !/^\s*\d+\s+Z/.test(l));
}

/** Live processes in a PID namespace (by its inode), from /proc. */
/**
 * Live processes in a PID namespace that run as the given host uid. The uid matters: once the
 * namespace is gone, the kernel may reuse its inode number for another sandbox's namespace
 * (other test files run at the same time).
 */
function processesInPidNamespace(nsLink: string, uid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== nsLink) continue;
      if (statSync(`/proc/${entry}`).uid !== uid) continue;
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${entry}/status`, 'utf8'))) continue;
      pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/**
 * Reads an SSE stream. With `until`, stops (and disconnects) at the first event it accepts;
 * without, reads to the end of the stream.
 */
async function readSse(server: ServerProcess, path: string, until?: (e: SseEvent) => boolean): Promise<SseEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20_000);
  const events: SseEvent[] = [];
  try {
    const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.apiKey}` }, signal: controller.signal });
    if (res.status !== 200) assert.fail(`GET ${path}: ${res.status} ${await res.text()}`);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
        }
        if (fields.data === undefined) continue;
        const event: SseEvent = { id: fields.id, event: fields.event ?? 'message', data: JSON.parse(fields.data) as Record<string, any> };
        events.push(event);
        if (until?.(event)) {
          controller.abort();
          return events;
        }
      }
    }
    return events;
  } catch (err) {
    if (until && (err as Error).name === 'AbortError' && events.some(until)) return events;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

after(async () => {
  for (const server of servers) await server.stop('SIGTERM');
  for (const dir of dataDirs) forceCleanup(dir);
});

describe('restart after the server was killed (SIGKILL)', () => {
  const apiKey = `test_${randomBytes(12).toString('hex')}`;
  const mark = `300.${randomInt(0, 100_000)}`;
  let dataDir: string;
  let restarted: ServerProcess;
  let instanceId: string;
  let execId: string;
  let ephemeralId: string;
  let ephemeralInstanceId: string;
  let pidNamespace: string;
  let sandboxUid: number;
  /** Host state right after the kill, before the new server started. */
  let afterKill: { mounts: string[]; groups: Record<string, boolean> };

  before(async () => {
    dataDir = newDataDir();
    const first = await start(dataDir, apiKey);
    const created = await first.request('POST', '/api/v1/instances', {});
    assert.equal(created.status, 201, created.text);
    instanceId = created.body.id;
    const kept = await first.request('POST', `/api/v1/instances/${instanceId}/exec`, { code: 'echo kept > /workspace/kept.txt' });
    assert.equal(kept.body.exit_code, 0, kept.text);

    const started = await first.request('POST', `/api/v1/instances/${instanceId}/exec`, { code: `echo before; sleep ${mark}`, background: true });
    assert.equal(started.status, 202, started.text);
    execId = started.body.id;
    const eph = await first.request('POST', '/api/v1/execute', { code: `echo ephemeral; sleep ${mark}`, background: true, timeout_ms: 600_000 });
    assert.equal(eph.status, 202, eph.text);
    ephemeralId = eph.body.id;
    ephemeralInstanceId = eph.body.instance_id;

    // Both have logged their first output event.
    for (const id of [execId, ephemeralId]) {
      const events = await readSse(first, `/api/v1/executions/${id}/events?after=0`, (e) => e.event === 'output');
      assert.equal(events.at(-1)!.event, 'output');
    }
    // The sandbox's PID namespace, to look for survivors later.
    // (The init group also holds bwrap's host-side process, which is in the host's namespace.)
    const hostNamespace = readlinkSync('/proc/self/ns/pid');
    // v2 keeps the init in <instance>/init; v1 in the instance group itself.
    const instanceGroup = join(layout.byController.pids!.mountPoint, cgroupPrefixFor(dataDir), instanceId);
    const initGroup = existsSync(join(instanceGroup, 'init')) ? join(instanceGroup, 'init', 'cgroup.procs') : join(instanceGroup, 'cgroup.procs');
    const namespaces = readFileSync(initGroup, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((pid) => readlinkSync(`/proc/${pid}/ns/pid`))
      .filter((ns) => ns !== hostNamespace);
    assert.ok(namespaces.length > 0, 'the sandbox init runs in its own PID namespace');
    pidNamespace = namespaces[0]!;
    sandboxUid = statSync(join(dataDir, 'instances', instanceId, 'upper', 'workspace')).uid;

    await first.stop('SIGKILL');
    afterKill = {
      mounts: mountsUnder(join(dataDir, 'instances')),
      groups: Object.fromEntries([...groupDirs(dataDir, instanceId), ...groupDirs(dataDir, ephemeralInstanceId)].map((d) => [d, existsSync(d)])),
    };
    restarted = await start(dataDir, apiKey);
  });

  it('leaves the overlay mounts and cgroup dirs behind when killed (what recovery must clean)', () => {
    assert.ok(afterKill.mounts.includes(join(dataDir, 'instances', instanceId, 'merged')), `mounts after kill: ${afterKill.mounts.join(', ')}`);
    assert.ok(afterKill.mounts.includes(join(dataDir, 'instances', ephemeralInstanceId, 'merged')));
    for (const [dir, exists] of Object.entries(afterKill.groups)) assert.ok(exists, `${dir} should still exist right after the kill`);
  });

  it('marks the instance stopped with state_reason executor_restart and keeps its files', async () => {
    const res = await restarted.request('GET', `/api/v1/instances/${instanceId}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.state, 'stopped');
    assert.equal(res.body.state_reason, 'executor_restart');
    assert.notEqual(res.body.stopped_at, null);
    assert.equal(readFileSync(join(dataDir, 'instances', instanceId, 'upper', 'workspace', 'kept.txt'), 'utf8'), 'kept\n');
  });

  it('refuses to run a process in the stopped instance (INSTANCE_NOT_RUNNING)', async () => {
    const res = await restarted.request('POST', `/api/v1/instances/${instanceId}/exec`, { code: 'echo hi' });
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.error.code, 'INSTANCE_NOT_RUNNING');
  });

  it('marks the running execution interrupted and keeps its output', async () => {
    const res = await restarted.request('GET', `/api/v1/executions/${execId}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'interrupted');
    assert.equal(res.body.stdout, 'before\n');
    assert.equal(res.body.exit_reason, null);
    assert.notEqual(res.body.finished_at, null);
  });

  it('reports byte counts of an interrupted execution that match the output it kept', async () => {
    const res = await restarted.request('GET', `/api/v1/executions/${execId}`);
    assert.equal(res.body.stdout, 'before\n');
    assert.equal(res.body.stdout_bytes, Buffer.byteLength(res.body.stdout), 'stdout_bytes');
    assert.equal(res.body.stderr_bytes, 0);
  });

  it('replays the event stream from after=0: the output, then an EXECUTION_INTERRUPTED error event, then the stream ends', async () => {
    const events = await readSse(restarted, `/api/v1/executions/${execId}/events?after=0`);
    assert.ok(events.length >= 2, JSON.stringify(events));
    const output = events.slice(0, -1);
    assert.ok(output.every((e) => e.event === 'output' && e.data.stream === 'stdout'), JSON.stringify(output));
    assert.equal(output.map((e) => e.data.data).join(''), 'before\n');
    const last = events.at(-1)!;
    assert.equal(last.event, 'error');
    assert.equal(last.data.code, 'EXECUTION_INTERRUPTED');
    assert.deepEqual(
      events.map((e) => e.data.seq),
      events.map((_, i) => i + 1),
      'seq 1..N without gaps',
    );
    assert.equal(last.id, String(last.data.seq));
    const res = await restarted.request('GET', `/api/v1/executions/${execId}`);
    assert.equal(res.body.last_seq, last.data.seq);
  });

  it('removes the overlay mounts and cgroup dirs of the instances the killed server ran', () => {
    assert.deepEqual(mountsUnder(join(dataDir, 'instances')), []);
    for (const dir of [...groupDirs(dataDir, instanceId), ...groupDirs(dataDir, ephemeralInstanceId)]) assert.equal(existsSync(dir), false, `${dir} remains`);
    assert.deepEqual(instanceGroupsOf(dataDir), []);
  });

  it('leaves no process of the old sandboxes alive', async () => {
    assert.ok(await waitFor(() => liveProcessesWith(`sleep ${mark}`).length === 0, 3000), `still running: ${liveProcessesWith(`sleep ${mark}`).join('\n')}`);
    assert.deepEqual(processesInPidNamespace(pidNamespace, sandboxUid), [], 'processes remain in the sandbox PID namespace');
  });

  it('deletes the instance of an ephemeral execution that ran at the crash (executor_restart) and removes its directory', async () => {
    const inst = await restarted.request('GET', `/api/v1/instances/${ephemeralInstanceId}`);
    assert.equal(inst.status, 200, inst.text);
    assert.equal(inst.body.state, 'deleted');
    assert.equal(inst.body.state_reason, 'executor_restart');
    assert.equal(existsSync(join(dataDir, 'instances', ephemeralInstanceId)), false);
    const exec = await restarted.request('GET', `/api/v1/executions/${ephemeralId}`);
    assert.equal(exec.body.status, 'interrupted');
    assert.equal(exec.body.stdout, 'ephemeral\n');
  });

  it('serves new executions normally after the restart', async () => {
    const res = await restarted.request('POST', '/api/v1/execute', { code: 'echo fresh; cat /workspace/kept.txt 2>/dev/null; true' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.exit_code, 0);
    assert.equal(res.body.stdout, 'fresh\n');
    const inst = await restarted.request('POST', '/api/v1/instances', {});
    assert.equal(inst.status, 201, inst.text);
    const exec = await restarted.request('POST', `/api/v1/instances/${inst.body.id}/exec`, { code: 'echo new instance' });
    assert.equal(exec.body.stdout, 'new instance\n');
  });
});

describe('graceful stop (SIGTERM)', () => {
  const apiKey = `test_${randomBytes(12).toString('hex')}`;
  const mark = `301.${randomInt(0, 100_000)}`;
  let dataDir: string;
  let exitCode: number | null;
  let instanceIds: string[];

  before(async () => {
    dataDir = newDataDir();
    const server = await start(dataDir, apiKey);
    const inst = await server.request('POST', '/api/v1/instances', {});
    assert.equal(inst.status, 201, inst.text);
    const bg = await server.request('POST', `/api/v1/instances/${inst.body.id}/exec`, { code: `echo up; sleep ${mark}`, background: true });
    assert.equal(bg.status, 202, bg.text);
    const eph = await server.request('POST', '/api/v1/execute', { code: `echo up; sleep ${mark}`, background: true, timeout_ms: 600_000 });
    assert.equal(eph.status, 202, eph.text);
    instanceIds = [inst.body.id, eph.body.instance_id];
    for (const id of [bg.body.id, eph.body.id]) await readSse(server, `/api/v1/executions/${id}/events?after=0`, (e) => e.event === 'output');
    assert.equal(mountsUnder(join(dataDir, 'instances')).length, 2, 'both instances are mounted before the stop');
    await server.stop('SIGTERM');
    exitCode = server.child.exitCode;
  });

  it('exits with code 0 and leaves no mount, instance cgroup or sandbox process behind', async () => {
    assert.equal(exitCode, 0);
    assert.deepEqual(mountsUnder(dataDir), []);
    for (const id of instanceIds) for (const dir of groupDirs(dataDir, id)) assert.equal(existsSync(dir), false, `${dir} remains`);
    assert.deepEqual(instanceGroupsOf(dataDir), []);
    assert.ok(await waitFor(() => liveProcessesWith(`sleep ${mark}`).length === 0, 3000), liveProcessesWith(`sleep ${mark}`).join('\n'));
  });

  it("removes the server's own cgroup directory from every controller when it stops", () => {
    const prefix = cgroupPrefixFor(dataDir);
    const left = layout.hierarchies.map((h) => join(h.mountPoint, prefix)).filter((d) => existsSync(d));
    assert.deepEqual(left, [], 'empty cgroup dirs of a stopped server stay on the host for good');
  });
});
