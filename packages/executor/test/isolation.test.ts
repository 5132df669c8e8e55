import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import koffi from 'koffi';
import { detectCgroupLayout } from '../src/runtime/cgroups/layout.ts';
import { cgroupPrefixFor } from '../src/serve.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/**
 * What sandboxed code can and cannot reach, checked from inside through the HTTP API and
 * from the host. One server, two long-lived instances (A and B) for the whole file.
 */

interface ExecResult {
  exit_code: number | null;
  exit_reason: string;
  stdout: string;
  stderr: string;
}

const tag = randomBytes(6).toString('hex');
const SECRET_NAME = 'FAAS_SECRET_TEST';
const SECRET_VALUE = `secret-${randomBytes(12).toString('hex')}`;
/** Host paths the tests create or that sandboxed code tries to create; all removed after. */
const hostRootFile = `/root/faas-isolation-${tag}`;
const escapeTargets = [`/root/faas-escape-${tag}`, `/tmp/faas-escape-${tag}`, `/usr/faas-escape-${tag}`, `/usr/bin/faas-escape-${tag}`];

let server: TestServer;
let a: string;
let b: string;
let listener: Server | undefined;

async function createInstance(): Promise<string> {
  const res = await server.request('POST', '/api/v1/instances', {});
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.state, 'running');
  return res.body.id as string;
}

async function exec(instanceId: string, body: { code: string } | { command: string[] }): Promise<ExecResult> {
  const res = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { timeout_ms: 20_000, ...body });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.status, 'completed', res.text);
  return res.body as ExecResult;
}

/** Runs and requires exit code 0, so a broken probe cannot pass as "isolated". */
async function execOk(instanceId: string, body: { code: string } | { command: string[] }): Promise<ExecResult> {
  const result = await exec(instanceId, body);
  assert.equal(result.exit_code, 0, `probe failed: ${result.stderr}`);
  return result;
}

before(async () => {
  // The server runs in this process: its environment is this one.
  process.env[SECRET_NAME] = SECRET_VALUE;
  server = await startTestServer();
  [a, b] = await Promise.all([createInstance(), createInstance()]);
});

after(async () => {
  await new Promise<void>((resolve) => (listener ? listener.close(() => resolve()) : resolve()));
  const prefix = server ? cgroupPrefixFor(server.dataDir) : undefined;
  await server?.close();
  delete process.env[SECRET_NAME];
  for (const path of [hostRootFile, ...escapeTargets, `/workspace/faas-iso-${tag}.txt`]) rmSync(path, { force: true });
  // The server leaves its own (empty) cgroup directory in each controller: remove ours.
  if (prefix) {
    for (const h of detectCgroupLayout().hierarchies) {
      try {
        rmdirSync(join(h.mountPoint, prefix));
      } catch {
        // not there, or (after a failure) not empty
      }
    }
  }
});

describe('filesystem isolation', () => {
  it('cannot read a file in the server data dir or in the host /root from inside', async () => {
    const inDataDir = join(server.dataDir, `host-secret-${tag}`);
    const content = `host-only-${randomBytes(8).toString('hex')}`;
    writeFileSync(inDataDir, content);
    writeFileSync(hostRootFile, content, { mode: 0o644 });
    for (const path of [inDataDir, hostRootFile, join(server.dataDir, 'faas.db')]) {
      const result = await exec(a, { command: ['cat', path] });
      assert.notEqual(result.exit_code, 0, `cat ${path} must fail inside`);
      assert.match(result.stderr, /No such file or directory|Permission denied/);
      assert.ok(!result.stdout.includes(content));
    }
    // Nor is the content anywhere in the sandbox's own tree.
    const search = await exec(a, { code: `grep -rlsF '${content}' /etc /home /root /tmp /var /workspace /run /mnt /opt /srv; echo "grep=$?"` });
    assert.match(search.stdout, /^grep=[12]\n$/, `found the host file's content inside: ${search.stdout}`);
  });

  it('keeps writes to absolute host paths inside the instance, and /usr is read-only (EROFS)', async () => {
    const script = [
      'import errno, sys',
      'for p in sys.argv[1:]:',
      '    try:',
      '        with open(p, "w") as f: f.write("escaped")',
      '        print(p, "ok")',
      '    except OSError as e:',
      '        print(p, errno.errorcode[e.errno])',
    ].join('\n');
    const result = await execOk(a, { command: ['python3', '-c', script, ...escapeTargets] });
    const outcome = Object.fromEntries(result.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
    for (const path of escapeTargets) assert.equal(existsSync(path), false, `${path} appeared on the host`);
    assert.equal(outcome[`/usr/faas-escape-${tag}`], 'EROFS');
    assert.equal(outcome[`/usr/bin/faas-escape-${tag}`], 'EROFS');
    assert.equal(outcome[`/root/faas-escape-${tag}`], 'EACCES');
    assert.equal(outcome[`/tmp/faas-escape-${tag}`], 'ok', 'the instance has its own writable /tmp');
    // The /tmp write did happen, in the instance's own layer.
    assert.equal((await execOk(a, { command: ['cat', `/tmp/faas-escape-${tag}`] })).stdout, 'escaped');
  });

  it('keeps /workspace files in their own instance: another instance and the host do not see them', async () => {
    const file = `/workspace/faas-iso-${tag}.txt`;
    await execOk(a, { code: `echo only-in-a > ${file}` });
    assert.equal((await execOk(a, { command: ['cat', file] })).stdout, 'only-in-a\n', 'a later exec in the same instance sees it');
    const fromB = await exec(b, { command: ['cat', file] });
    assert.notEqual(fromB.exit_code, 0);
    assert.match(fromB.stderr, /No such file or directory/);
    assert.equal(existsSync(file), false, 'not on the host /workspace');
    assert.equal(existsSync(join(server.dataDir, 'instances', a, 'upper', 'workspace', `faas-iso-${tag}.txt`)), true, "it lives in A's upper layer");
    assert.equal(existsSync(join(server.dataDir, 'instances', b, 'upper', 'workspace', `faas-iso-${tag}.txt`)), false);
  });

  it('gives every instance its own private /tmp', async () => {
    await execOk(a, { code: `echo a > /tmp/private-${tag}` });
    await execOk(b, { code: `echo b > /tmp/private-${tag}` });
    assert.equal((await execOk(a, { command: ['cat', `/tmp/private-${tag}`] })).stdout, 'a\n');
    assert.equal((await execOk(b, { command: ['cat', `/tmp/private-${tag}`] })).stdout, 'b\n');
    assert.equal(existsSync(`/tmp/private-${tag}`), false);
  });
});

describe('process isolation', () => {
  it('shows only the sandbox processes in ps -e, with bwrap as pid 1 and no host process', async () => {
    const ps = await execOk(a, { command: ['ps', '-e', '-o', 'pid=,comm='] });
    const rows = ps.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/) as [string, string]);
    assert.ok(rows.length <= 4, `expected bwrap, sleep and ps only, got:\n${ps.stdout}`);
    assert.deepEqual(rows[0], ['1', 'bwrap']);
    for (const [, comm] of rows) assert.ok(['bwrap', 'sleep', 'ps'].includes(comm), `unexpected process ${comm}`);

    const cmdline = await execOk(a, { code: "tr '\\0' ' ' < /proc/1/cmdline" });
    assert.match(cmdline.stdout, /^\S*bwrap /);
  });

  it('cannot see the server process: no process inside is node, and the server pid does not name it', async () => {
    const listing = await execOk(a, {
      code: `for d in /proc/[0-9]*; do printf '%s %s\\n' "\${d#/proc/}" "$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)"; done; echo "server=$(tr '\\0' ' ' < /proc/${process.pid}/cmdline 2>&1)"`,
    });
    const procs = listing.stdout.split('\n').filter((l) => /^\d+ /.test(l));
    assert.ok(procs.length >= 2 && procs.length <= 5, `expected a handful of sandbox processes:\n${listing.stdout}`);
    assert.ok(!/node|tsx/.test(listing.stdout.replace(/^server=.*$/m, '')), `a host process is visible:\n${listing.stdout}`);
    const serverLine = /^server=(.*)$/m.exec(listing.stdout)?.[1] ?? '';
    assert.ok(!serverLine.includes('node'), `the server (host pid ${process.pid}) is visible: ${serverLine}`);
  });

  it('cannot read the environment of the server process (env and /proc/*/environ)', async () => {
    assert.equal(process.env[SECRET_NAME], SECRET_VALUE, 'the variable is set in the server process');
    const env = await execOk(a, { command: ['env'] });
    assert.ok(!env.stdout.includes(SECRET_NAME) && !env.stdout.includes(SECRET_VALUE), env.stdout);
    assert.match(env.stdout, /^FAAS_INSTANCE_ID=/m, 'env itself works');
    const environs = await exec(a, { code: "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'" });
    assert.ok(!environs.stdout.includes(SECRET_VALUE));
    const ephemeral = await server.request('POST', '/api/v1/execute', { command: ['env'], timeout_ms: 20_000 });
    assert.equal(ephemeral.status, 200, ephemeral.text);
    assert.equal(ephemeral.body.exit_code, 0);
    assert.ok(!ephemeral.body.stdout.includes(SECRET_VALUE) && !ephemeral.body.stdout.includes(SECRET_NAME));
  });

  it('sets the host name to the instance id', async () => {
    const result = await execOk(a, { code: 'hostname; cat /proc/sys/kernel/hostname' });
    assert.equal(result.stdout, `${a}\n${a}\n`);
  });
});

describe('network isolation', () => {
  it('cannot reach a TCP listener on the host loopback that the host itself reaches', async () => {
    let connections = 0;
    listener = createServer((socket) => {
      connections++;
      socket.end('hello');
    });
    await new Promise<void>((resolve) => listener!.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as AddressInfo).port;
    const greeting = await new Promise<string>((resolve, reject) => {
      let data = '';
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.setEncoding('utf8').on('data', (d: string) => (data += d));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    assert.equal(greeting, 'hello', 'the listener answers on the host');
    assert.equal(connections, 1);

    const probe = [
      'import socket, sys, time',
      's = socket.socket()',
      's.settimeout(3)',
      't = time.monotonic()',
      'try:',
      `    s.connect(("127.0.0.1", ${port}))`,
      '    print("connected", s.recv(10))',
      'except Exception as e:',
      '    print(type(e).__name__)',
      'print(round(time.monotonic() - t, 3))',
    ].join('\n');
    const result = await execOk(a, { command: ['python3', '-c', probe] });
    const [outcome, seconds] = result.stdout.trim().split('\n');
    assert.equal(outcome, 'ConnectionRefusedError');
    assert.ok(Number(seconds) < 1, `refused at once, took ${seconds} s`);
    assert.equal(connections, 1, 'no connection from the sandbox reached the listener');
  });

  it('has no network interface but loopback (/proc/net/dev)', async () => {
    const result = await execOk(a, { command: ['cat', '/proc/net/dev'] });
    const names = result.stdout
      .split('\n')
      .slice(2)
      .filter((l) => l.includes(':'))
      .map((l) => l.split(':')[0]!.trim());
    assert.deepEqual(names, ['lo']);
  });

  it('has no egress: connecting to an outside address or to the host non-loopback address is unreachable', async () => {
    const hostAddresses = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
      .map((i) => i!.address);
    const targets = ['1.1.1.1', ...hostAddresses.slice(0, 1)];
    const probe = [
      'import errno, socket, sys',
      'for host in sys.argv[1:]:',
      '    s = socket.socket()',
      '    s.settimeout(3)',
      '    try:',
      '        s.connect((host, 80))',
      '        print(host, "connected")',
      '    except OSError as e:',
      '        print(host, errno.errorcode.get(e.errno, type(e).__name__))',
    ].join('\n');
    const result = await execOk(a, { command: ['python3', '-c', probe, ...targets] });
    for (const host of targets) assert.match(result.stdout, new RegExp(`^${host.replace(/\./g, '\\.')} ENETUNREACH$`, 'm'), result.stdout);
  });
});

describe('privileges', () => {
  it('runs code as uid and gid 1000 with no capabilities and no_new_privs set', async () => {
    const ids = await execOk(a, { code: 'id -u; id -g' });
    assert.equal(ids.stdout, '1000\n1000\n');
    const status = (await execOk(a, { command: ['cat', '/proc/self/status'] })).stdout;
    const field = (name: string) => new RegExp(`^${name}:\\s+(\\S+)$`, 'm').exec(status)?.[1];
    for (const cap of ['CapEff', 'CapPrm', 'CapInh', 'CapAmb']) assert.equal(field(cap), '0000000000000000', `${cap} must be empty`);
    assert.equal(field('NoNewPrivs'), '1');
  });

  it('cannot become root inside (setuid(0) is refused)', async () => {
    const script = 'import errno, os\ntry:\n    os.setuid(0)\n    print("root", os.getuid())\nexcept OSError as e:\n    print(errno.errorcode[e.errno], os.getuid())';
    const result = await execOk(a, { command: ['python3', '-c', script] });
    // EINVAL: uid 0 is not even mapped in the sandbox's user namespace; EPERM: no CAP_SETUID.
    assert.match(result.stdout, /^(EPERM|EINVAL) 1000\n$/);
  });

  it('maps the sandbox user onto an unprivileged host uid (>= 1000000 by default), a different one per instance', async () => {
    const name = `owner-${tag}`;
    const hostOwner = async (instanceId: string) => {
      const inside = await execOk(instanceId, { code: `echo x > /workspace/${name}; stat -c %u:%g /workspace/${name}` });
      assert.equal(inside.stdout, '1000:1000\n', 'inside, the file belongs to the sandbox user');
      const st = statSync(join(server.dataDir, 'instances', instanceId, 'upper', 'workspace', name));
      return { uid: st.uid, gid: st.gid };
    };
    const ownerA = await hostOwner(a);
    const ownerB = await hostOwner(b);
    for (const owner of [ownerA, ownerB]) {
      assert.ok(owner.uid >= 1_000_000, `host uid ${owner.uid} must be an unprivileged faas uid`);
      assert.ok(owner.gid >= 1_000_000, `host gid ${owner.gid} must be an unprivileged faas gid`);
    }
    assert.notEqual(ownerA.uid, ownerB.uid, 'two instances share a host uid');
    const wsA = statSync(join(server.dataDir, 'instances', a, 'upper', 'workspace'));
    assert.equal(wsA.uid, ownerA.uid, "the instance's workspace dir belongs to its host uid");
  });
});

describe('descriptors', () => {
  it('passes no descriptor of the server into the sandbox, even one opened without close-on-exec', async () => {
    // dup() makes a descriptor without close-on-exec, as a careless library or a parent
    // process might leave one; it points at a host file the sandbox must not reach.
    const libc = koffi.load('libc.so.6');
    const dup = libc.func('int dup(int fd)');
    const close = libc.func('int close(int fd)');
    const secretPath = join(server.dataDir, `leak-${tag}`);
    writeFileSync(secretPath, SECRET_VALUE);
    const opened = openSync(secretPath, 'r');
    const leaked = dup(opened) as number;
    closeSync(opened);
    assert.ok(leaked > 2, 'dup gave a descriptor');
    try {
      const id = await createInstance();
      const probe = await execOk(id, {
        code: `ls /proc/self/fd /proc/1/fd /proc/2/fd; cat /proc/self/fd/${leaked} /proc/2/fd/${leaked} /proc/1/fd/${leaked} 2>/dev/null; true`,
      });
      assert.doesNotMatch(probe.stdout, new RegExp(SECRET_VALUE));
      const own = (await execOk(id, { code: 'cd /proc/self/fd && echo *' })).stdout.trim().split(' ').map(Number);
      // 0-2 standard streams, 3 the progress descriptor, and the one the shell's glob opened.
      assert.ok(own.every((fd) => fd <= 4), `descriptors inside: ${own.join(' ')}`);
      await server.request('DELETE', `/api/v1/instances/${id}`);
    } finally {
      close(leaked);
      rmSync(secretPath, { force: true });
    }
  });
});
