import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TEST_IMAGE_DIR } from '../src/runtime/vm/vm-test-fixture.ts';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { ClientDir, clientOptions, run, SCP, ssh } from './fixtures/openssh-client.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

// The vm runtime through the API: snapshots of running machines carry memory, and restores and
// branches bring back running processes.
process.env.FAAS_VM_IMAGE_DIR ??= TEST_IMAGE_DIR;

let server: TestServer;
before(async () => {
  server = await startTestServer({ runtime: 'vm' });
});
after(() => server?.close());

type Res = Awaited<ReturnType<TestServer['request']>>;

function assertError(res: Res, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body.error.code, code, res.text);
}

async function createInstance(): Promise<string> {
  const res = await server.request('POST', '/api/v1/instances', {});
  assert.equal(res.status, 201, res.text);
  return res.body.id;
}

async function sh(instanceId: string, code: string): Promise<string> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { code, language: 'bash', timeout_ms: 60_000 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.exit_code, 0, `exit ${res.body.exit_code}: ${res.body.stderr}`);
  return res.body.stdout;
}

/** Starts a counter in the background: its value lives in the shell's memory, mirrored to a file (renamed into place, so a read never sees it half written). */
const COUNTER = 'nohup sh -c \'i=0; while :; do i=$((i+1)); echo "$$ $i" > /workspace/counter.tmp; mv /workspace/counter.tmp /workspace/counter; sleep 0.05; done\' >/dev/null 2>&1 &';

async function counter(instanceId: string): Promise<{ pid: number; value: number }> {
  const [pid, value] = (await sh(instanceId, 'cat /workspace/counter')).trim().split(' ').map(Number);
  return { pid: pid!, value: value! };
}

async function counterPast(instanceId: string, min: number): Promise<{ pid: number; value: number }> {
  for (let i = 0; i < 200; i++) {
    const c = await counter(instanceId).catch(() => undefined);
    if (c !== undefined && c.value > min) return c;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`counter of ${instanceId} never passed ${min}`);
}

describe('vm runtime through the API', () => {
  it('reports memory snapshots among its capabilities', async () => {
    const health = (await server.request('GET', '/health')).body;
    assert.equal(health.runtime, 'vm');
    assert.equal(health.capabilities.memory_snapshots, true);
  });

  it('a snapshot of a running instance holds its memory; two branches continue the counter from the saved value, then diverge', async () => {
    const source = await createInstance();
    await sh(source, COUNTER);
    const before = await counterPast(source, 3);
    const snapRes = await server.request('POST', '/api/v1/snapshots', { instance_id: source });
    assert.equal(snapRes.status, 201, snapRes.text);
    const snap = snapRes.body;
    assert.match(snap.memory_hash, /^[0-9a-f]{64}$/);
    // The snapshot was taken after `before` was read: a branch can start no lower.
    const saved = before.value;

    const res = await server.request('POST', '/api/v1/branches', { snapshot_id: snap.id, count: 2 });
    assert.equal(res.status, 201, res.text);
    const [a, b] = res.body.branches.map((x: { id: string }) => x.id) as [string, string];
    for (const branch of [a, b]) {
      // The same process (same pid), counting on from where it was: memory came back.
      const first = await counter(branch);
      assert.equal(first.pid, before.pid, `branch ${branch} runs the snapshot's counter process`);
      assert.ok(first.value >= saved, `branch ${branch} starts at ${first.value}, the snapshot had ${saved}`);
      const later = await counterPast(branch, first.value);
      assert.equal(later.pid, before.pid);
    }
    await sh(a, 'echo a > /workspace/who');
    await sh(b, 'echo b > /workspace/who');
    assert.equal(await sh(a, 'cat /workspace/who'), 'a\n');
    assert.equal(await sh(b, 'cat /workspace/who'), 'b\n');
    assert.equal(await sh(source, 'test -e /workspace/who && echo yes || echo no'), 'no\n');
  });

  it('a later snapshot of a changed machine has a different memory hash, and gc keeps memory blobs of live snapshots', async () => {
    const id = await createInstance();
    const first = (await server.request('POST', '/api/v1/snapshots', { instance_id: id })).body;
    await sh(id, 'python3 -c "open(\'/dev/shm/x\', \'w\').write(\'m\' * 5_000_000)"');
    const second = (await server.request('POST', '/api/v1/snapshots', { instance_id: id })).body;
    assert.notEqual(first.memory_hash, second.memory_hash);
    const gc = await server.request('POST', '/api/v1/snapshots/gc', { grace_ms: 0 });
    assert.equal(gc.status, 200, gc.text);
    const verify = (await server.request('POST', '/api/v1/snapshots/verify')).body;
    assert.equal(verify.ok, true, JSON.stringify(verify));
    // The memory image still restores after the sweep: the machine's tmpfs file is back.
    const restored = (await server.request('POST', `/api/v1/snapshots/${second.id}/restore`, {})).body;
    assert.equal(await sh(restored.id, 'wc -c < /dev/shm/x'), '5000000\n');
  });

  it('timeout_ms ends the whole process tree inside the machine: exit_reason "timeout", nothing left', async () => {
    const id = await createInstance();
    const started = Date.now();
    const res = await server.request('POST', `/api/v1/instances/${id}/exec`, { command: ['sh', '-c', 'sleep 101 & sleep 101'], timeout_ms: 700 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.exit_reason, 'timeout');
    assert.equal(res.body.exit_code, null);
    assert.ok(Date.now() - started < 10_000);
    assert.doesNotMatch(await sh(id, 'ps -eo args'), /sleep 101/);
  });

  it('plain OpenSSH works on a vm instance: exec with exit status, a terminal, scp up and down', async () => {
    const client = new ClientDir();
    try {
      const id = await createInstance();
      const rotated = await server.request('POST', `/api/v1/instances/${id}/ssh/rotate`, {});
      assert.equal(rotated.status, 201, rotated.text);
      const key = client.key(rotated.body.key.private_key);
      const target = { host: '127.0.0.1', port: server.ssh!.port, user: id, keyFiles: [key], knownHosts: client.knownHosts };
      const r = await ssh(target, ['echo "$(id -u) $(pwd)"; echo err >&2; exit 3']);
      assert.equal(r.code, 3, r.stderr.toString());
      assert.equal(r.stdout.toString(), '1000 /workspace\n');
      assert.match(r.stderr.toString(), /(^|\n)err\n$/);
      const tty = await ssh(target, ['tty'], { extra: ['-tt'] });
      assert.match(tty.stdout.toString(), /\/dev\/pts\/\d+/);
      const payload = randomBytes(1024 * 1024 + 3);
      const local = client.path('up.bin');
      writeFileSync(local, payload);
      const scp = [...clientOptions(client.knownHosts), '-P', String(server.ssh!.port), '-i', key];
      assert.equal((await run(SCP, [...scp, local, `${id}@127.0.0.1:/workspace/up.bin`])).code, 0);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      assert.equal(await sh(id, 'sha256sum < /workspace/up.bin | cut -d" " -f1'), `${sha(payload)}\n`);
      const back = client.path('back.bin');
      assert.equal((await run(SCP, [...scp, `${id}@127.0.0.1:/workspace/up.bin`, back])).code, 0);
      assert.equal(sha(readFileSync(back)), sha(payload));
    } finally {
      client.close();
    }
  });

  it('file readiness probes look from inside the machine: exists, non-empty, empty, missing', async () => {
    const id = await createInstance();
    await sh(id, 'mkdir -p /workspace/f/d && : > /workspace/f/empty && echo hi > /workspace/f/full && ln -s full /workspace/f/link');
    const check = async (probe: Record<string, unknown>) => {
      // A generous timeout: these checks are about the answers; an exec into an emulated (TCG)
      // guest on a loaded machine can take longer than the 1 s default.
      const res = await server.request('POST', `/api/v1/instances/${id}/readiness`, { probes: [{ type: 'file', timeout_ms: 15_000, ...probe }] });
      assert.equal(res.status, 200, res.text);
      return { ready: res.body.ready as boolean, message: res.body.probes[0].message as string };
    };
    assert.deepEqual(await check({ path: '/workspace/f/empty' }), { ready: true, message: '/workspace/f/empty exists (file)' });
    assert.deepEqual(await check({ path: '/workspace/f/empty', non_empty: true }), { ready: false, message: '/workspace/f/empty exists but is empty' });
    assert.deepEqual(await check({ path: '/workspace/f/link', non_empty: true }), { ready: true, message: '/workspace/f/link exists, 3 bytes' });
    assert.deepEqual(await check({ path: '/workspace/f', non_empty: true }), { ready: true, message: '/workspace/f is a directory with 4 entries' });
    assert.deepEqual(await check({ path: '/workspace/f/d', non_empty: true }), { ready: false, message: '/workspace/f/d is an empty directory' });
    assert.deepEqual(await check({ path: '/workspace/nope' }), { ready: false, message: '/workspace/nope does not exist' });
  });

  it('file sync to a vm instance is refused with RUNTIME_UNSUPPORTED, naming why', async () => {
    const id = await createInstance();
    const res = await server.request('POST', `/api/v1/instances/${id}/sync`, { remote_dir: '/workspace', direction: 'download', manifest: [] });
    assertError(res, 501, 'RUNTIME_UNSUPPORTED');
    assert.match(res.body.error.message, /only while it is frozen/);
  });

  it('a snapshot of an instance that no longer runs is refused with INSTANCE_NOT_RUNNING, and its machine is gone', async () => {
    const id = await createInstance();
    assert.equal((await server.request('DELETE', `/api/v1/instances/${id}`)).status, 200);
    assertError(await server.request('POST', '/api/v1/snapshots', { instance_id: id }), 409, 'INSTANCE_NOT_RUNNING');
  });
});
