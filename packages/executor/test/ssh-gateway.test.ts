import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { serve } from '../src/serve.ts';
import { ClientDir, clientOptions, run, SCP, SFTP, SSH, ssh, type SshTarget } from './fixtures/openssh-client.ts';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';
import { until, waitFor } from './fixtures/wait.ts';

/**
 * End to end: the real OpenSSH client (ssh, scp, sftp, ssh -L) against a real server, keys
 * issued by its HTTP API, every process in a real bwrap instance. Protocol-level rules (limits,
 * hostile clients, audit calls) are test/ssh-gateway-auth.test.ts.
 */

let server: TestServer;
const client = new ClientDir();
/** The instance most tests use, and a live key of it. */
let instanceId: string;
let keyFile: string;

before(async () => {
  server = await startTestServer();
  assert.ok(server.ssh, 'the test server runs an SSH gateway');
  instanceId = await createInstance();
  keyFile = client.key((await rotate(instanceId)).private_key);
});

after(async () => {
  await server.close();
  client.close();
});

async function createInstance(): Promise<string> {
  const res = await server.request('POST', '/api/v1/instances', {});
  assert.equal(res.status, 201, res.text);
  return res.body.id as string;
}

async function rotate(id: string, body: Record<string, unknown> = {}): Promise<{ id: string; private_key: string; public_key: string; fingerprint: string }> {
  const res = await server.request('POST', `/api/v1/instances/${id}/ssh/rotate`, body);
  assert.equal(res.status, 201, res.text);
  return res.body.key;
}

function target(user = instanceId, key = keyFile): SshTarget {
  return { host: '127.0.0.1', port: server.ssh!.port, user, keyFiles: [key], knownHosts: client.knownHosts };
}

/** `sh -c script` in the instance over ssh; fails the test unless it exits 0. */
async function inInstance(script: string, id = instanceId, key = keyFile): Promise<string> {
  const r = await ssh(target(id, key), [script]);
  assert.equal(r.code, 0, `ssh ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.toString();
}

async function loginFailures(id: string): Promise<Array<{ fingerprint: string | null; details: Record<string, unknown> }>> {
  const res = await server.request('GET', `/api/v1/instances/${id}/ssh/audit?limit=1000`);
  assert.equal(res.status, 200, res.text);
  return res.body.events.filter((e: { event: string }) => e.event === 'login_failed');
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ssh: login and exec', () => {
  for (const algorithm of ['ed25519', 'rsa', 'ecdsa'] as const) {
    it(`logs in with an issued ${algorithm} key as the sandbox user in /workspace`, async () => {
      const id = await createInstance();
      const key = client.key((await rotate(id, { algorithm })).private_key);
      assert.equal(await inInstance('echo "$USER $(id -u) $(pwd) $HOME"', id, key), 'user 1000 /workspace /home/user\n');
    });
  }

  it('returns the exit status of the command and keeps stdout and stderr apart', async () => {
    const r = await ssh(target(), ['echo out; echo err >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout.toString(), 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('refuses a user name that is no instance', async () => {
    const r = await ssh(target('inst-does-not-exist'), ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
  });
});

describe('ssh: refused keys are refused and audited', () => {
  async function refused(id: string, key: string, reason: string, fingerprint: string): Promise<void> {
    const r = await ssh(target(id, key), ['true']);
    assert.equal(r.code, 255, r.stderr);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
    const failures = await loginFailures(id);
    assert.ok(
      failures.some((f) => f.fingerprint === fingerprint && f.details.reason === reason),
      `no login_failed with reason ${reason} for ${fingerprint}: ${JSON.stringify(failures)}`,
    );
  }

  it('an expired key', async () => {
    const id = await createInstance();
    const key = await rotate(id, { expires_in_ms: 1 });
    await new Promise((r) => setTimeout(r, 20));
    await refused(id, client.key(key.private_key), 'expired', key.fingerprint);
  });

  it('a revoked key', async () => {
    const id = await createInstance();
    const key = await rotate(id);
    const file = client.key(key.private_key);
    await inInstance('true', id, file);
    const res = await server.request('DELETE', `/api/v1/instances/${id}/ssh/keys/${key.id}`);
    assert.equal(res.status, 200, res.text);
    await refused(id, file, 'revoked', key.fingerprint);
  });

  it('a key rotated out (overlap 0), while its successor works', async () => {
    const id = await createInstance();
    const old = await rotate(id);
    const fresh = await rotate(id);
    await refused(id, client.key(old.private_key), 'revoked', old.fingerprint);
    await inInstance('true', id, client.key(fresh.private_key));
  });

  it("another instance's key", async () => {
    const id = await createInstance();
    const other = await rotate(await createInstance());
    await refused(id, client.key(other.private_key), 'other_instance', other.fingerprint);
  });
});

describe('ssh: metrics', () => {
  it('counts logins by result on /metrics', async () => {
    const res = await fetch(`${server.url}/metrics`);
    const text = await res.text();
    const count = (result: string) => Number(new RegExp(`^faas_ssh_logins_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    assert.ok(count('ok') > 0, text.split('\n').filter((l) => l.includes('ssh')).join('\n'));
    assert.ok(count('failed') > 0);
  });
});

/**
 * Drives `ssh -tt` like a person at a terminal: writes a line once the output shows what it
 * waits for. stdin is a pipe, so the PTY is the remote one only, which is what is tested.
 */
class TerminalSession {
  readonly child: ChildProcess;
  output = '';

  constructor(extra: string[] = []) {
    const t = target();
    this.child = spawn(SSH, [...clientOptions(t.knownHosts, ['-tt', ...extra]), '-p', String(t.port), '-i', keyFile, `${t.user}@${t.host}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.output += d));
  }

  async expect(pattern: RegExp, what: string): Promise<RegExpExecArray> {
    return until(`${what} (output so far: ${JSON.stringify(this.output.slice(-400))})`, async () => pattern.exec(this.output) ?? undefined, 15_000);
  }

  send(text: string): void {
    this.child.stdin!.write(text);
  }

  async exit(): Promise<number | null> {
    const [code] = (await once(this.child, 'close')) as [number | null];
    return code;
  }
}

describe('ssh: interactive shell under a PTY', () => {
  it('gives a prompt and a terminal; Ctrl-C interrupts the foreground job, not the shell', async () => {
    const term = new TerminalSession();
    try {
      await term.expect(/user@[^:]+:\/workspace\$ /, 'the prompt');
      term.send('tty; echo "TERM=$TERM"\n');
      await term.expect(/\/dev\/pts\/\d+/, 'tty names a pseudo-terminal');
      // One command per line: bash drops the rest of a list whose job died of SIGINT.
      term.send('sleep 30\n');
      await new Promise((r) => setTimeout(r, 700)); // sleep is the foreground job now
      const t0 = Date.now();
      term.send('\x03');
      await term.expect(/\^C/, 'the terminal echoes ^C');
      term.send('echo "after=$?"\n');
      await term.expect(/after=130/, 'sleep killed by SIGINT (status 130) and the shell alive');
      assert.ok(Date.now() - t0 < 10_000, 'not a 30 s sleep');
      term.send('exit 7\n');
      assert.equal(await term.exit(), 7);
    } finally {
      term.child.kill('SIGKILL');
    }
  });

  it('opens the PTY at the requested size and TERM, and follows window-change', async () => {
    const conn = new ssh2.Client();
    const ready = once(conn, 'ready');
    conn.connect({ host: '127.0.0.1', port: server.ssh!.port, username: instanceId, privateKey: readFileSync(keyFile) });
    await ready;
    try {
      const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        conn.shell({ rows: 33, cols: 111, term: 'xterm-256color' }, (err, s) => (err ? reject(err) : resolve(s))),
      );
      let out = '';
      stream.on('data', (d: Buffer) => (out += d.toString()));
      const seen = (re: RegExp, what: string) => until(`${what}: ${JSON.stringify(out.slice(-300))}`, async () => re.exec(out) ?? undefined, 15_000);
      stream.write('echo "size=$(stty size) term=$TERM"\n');
      await seen(/size=33 111 term=xterm-256color/, 'initial size and TERM');
      stream.setWindow(41, 132, 0, 0);
      await new Promise((r) => setTimeout(r, 200));
      stream.write('echo "now=$(stty size)"\n');
      await seen(/now=41 132/, 'size after window-change');
      stream.end('exit\n');
    } finally {
      conn.end();
    }
  });
});

describe('ssh: file transfer', () => {
  const payload = randomBytes(3 * 1024 * 1024 + 17);
  let local: string;
  before(() => {
    local = client.path('payload.bin');
    writeFileSync(local, payload);
  });

  function scpArgs(extra: string[] = []): string[] {
    return [...clientOptions(client.knownHosts, extra), '-P', String(server.ssh!.port), '-i', keyFile];
  }

  for (const [mode, extra] of [
    ['SFTP (OpenSSH 9 default)', []],
    ['legacy scp protocol (-O)', ['-O']],
  ] as const) {
    it(`scp up and down over ${mode}: bytes equal, file owned by the sandbox user`, async () => {
      const name = `up-${extra.length}.bin`;
      const up = await run(SCP, [...scpArgs([...extra]), local, `${instanceId}@127.0.0.1:/workspace/${name}`]);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(await inInstance(`sha256sum < /workspace/${name} | cut -d' ' -f1; stat -c %u:%g /workspace/${name}`), `${sha256(payload)}\n1000:1000\n`);
      const back = client.path(`back-${extra.length}.bin`);
      const down = await run(SCP, [...scpArgs([...extra]), `${instanceId}@127.0.0.1:${name}`, back]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(sha256(readFileSync(back)), sha256(payload));
    });
  }

  it('sftp works inside the instance only: / is its root, .. stops there, symlinks resolve in it', async () => {
    // Links a path check would have to get right; here the sandbox makes them harmless.
    await inInstance('mkdir -p /workspace/conf && ln -sfn /etc/shadow /workspace/conf/shadow-link && ln -sfn / /workspace/conf/root-link && echo inside > /workspace/conf/marker');
    assert.ok(existsSync('/etc/shadow') && existsSync('/work'), 'the host has /etc/shadow and /work (what must not show)');
    const batch = client.path('batch');
    writeFileSync(
      batch,
      [
        'cd /',
        'cd ..',
        'cd ..',
        'pwd',
        'ls -1 /',
        'ls -1 /workspace/conf/root-link/',
        `-get /etc/shadow ${client.path('shadow-abs')}`,
        `-get /workspace/conf/shadow-link ${client.path('shadow-link')}`,
        'mkdir /workspace/sftp-dir',
        `put ${join(client.dir, 'payload.bin')} /workspace/sftp-dir/p.bin`,
        `get /workspace/sftp-dir/p.bin ${client.path('sftp-back.bin')}`,
        'ls -l /workspace/sftp-dir',
        '',
      ].join('\n'),
    );
    const r = await run(SFTP, [...clientOptions(client.knownHosts), '-P', String(server.ssh!.port), '-i', keyFile, '-b', batch, `${instanceId}@127.0.0.1`]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString();
    assert.match(out, /Remote working directory: \/\n/, '.. past / stays at /');
    const listing = (after: string) => out.split(`sftp> ${after}\n`)[1]!.split('sftp>')[0]!.split('\n').filter(Boolean);
    for (const rootListing of [listing('ls -1 /'), listing('ls -1 /workspace/conf/root-link/')]) {
      assert.ok(rootListing.some((l) => l.endsWith('workspace')), `instance root listed: ${rootListing.join(',')}`);
      assert.ok(!rootListing.some((l) => /(^|\/)work$/.test(l)), `the host's /work must not show: ${rootListing.join(',')}`);
    }
    const hostShadow = readFileSync('/etc/shadow');
    for (const f of ['shadow-abs', 'shadow-link']) {
      const p = client.path(f);
      assert.ok(!existsSync(p) || !readFileSync(p).equals(hostShadow), `${f} must not be the host's /etc/shadow`);
    }
    assert.equal(sha256(readFileSync(client.path('sftp-back.bin'))), sha256(payload));
    assert.equal(await inInstance('stat -c %u:%g /workspace/sftp-dir /workspace/sftp-dir/p.bin'), '1000:1000\n1000:1000\n');
  });
});

describe('ssh: local port forwarding', () => {
  it('-L reaches a server listening on 127.0.0.1 inside the instance (not on the host)', async () => {
    const inside = 18_000 + Math.floor(Math.random() * 1000);
    const marker = randomBytes(8).toString('hex');
    await inInstance(`mkdir -p /workspace/www && echo ${marker} > /workspace/www/m.txt && cd /workspace/www && (nohup python3 -m http.server ${inside} --bind 127.0.0.1 >/dev/null 2>&1 &)`);
    // Nothing listens there on the host: the forward can only have reached the instance's loopback.
    await assert.rejects(tcpProbe(inside), /ECONNREFUSED/);
    const localPort = await freePort();
    const t = target();
    const forward = spawn(SSH, [...clientOptions(t.knownHosts, ['-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${localPort}:127.0.0.1:${inside}`]), '-p', String(t.port), '-i', keyFile, `${t.user}@${t.host}`], { stdio: 'ignore' });
    try {
      const body = await until(
        'the forwarded HTTP server to answer',
        async () => {
          try {
            const res = await fetch(`http://127.0.0.1:${localPort}/m.txt`);
            return res.ok ? await res.text() : undefined;
          } catch {
            return undefined;
          }
        },
        20_000,
      );
      assert.equal(body, `${marker}\n`);
    } finally {
      forward.kill('SIGTERM');
    }
  });

  it('a destination nothing listens on is a channel open failure', async () => {
    const r = await ssh(target(), [], { extra: ['-W', '127.0.0.1:1'] });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /open failed/);
  });
});

describe('ssh: lifetime', () => {
  it('a session ends when its instance is deleted', async () => {
    const id = await createInstance();
    const key = client.key((await rotate(id)).private_key);
    const t = target(id, key);
    const child = spawn(SSH, [...clientOptions(t.knownHosts), '-p', String(t.port), '-i', key, `${id}@127.0.0.1`, 'echo started; sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const closed = once(child, 'close') as Promise<[number | null]>;
    assert.ok(await waitFor(() => out.includes('started'), 15_000), 'the session runs');
    const t0 = Date.now();
    const res = await server.request('DELETE', `/api/v1/instances/${id}`);
    assert.equal(res.status, 200, res.text);
    const [code] = await closed;
    assert.notEqual(code, 0);
    assert.ok(Date.now() - t0 < 10_000, `ssh took ${Date.now() - t0} ms to end`);
  });

  it('keeps its host key across a restart: a client that pinned it connects again with strict checking', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'faas-ssh-restart-'));
    const knownHosts = client.path('known_hosts_restart');
    try {
      const first = await serve({ host: '127.0.0.1', port: 0, dataDir, apiKey: 'k', logLevel: 'silent', config: { sshPort: 0 } });
      const fp1 = first.ssh!.hostKeyFingerprint;
      const scan = await run('ssh-keyscan', ['-p', String(first.ssh!.port), '-t', 'ed25519', '127.0.0.1']);
      await first.close();
      const second = await serve({ host: '127.0.0.1', port: 0, dataDir, apiKey: 'k', logLevel: 'silent', config: { sshPort: 0 } });
      try {
        assert.equal(second.ssh!.hostKeyFingerprint, fp1);
        // What ssh-keyscan saw on the first run is what the second run presents.
        writeFileSync(knownHosts, scan.stdout.toString().replace(`[127.0.0.1]:${first.ssh!.port}`, `[127.0.0.1]:${second.ssh!.port}`));
        const fpOfScan = await run('ssh-keygen', ['-lf', knownHosts]);
        assert.match(fpOfScan.stdout.toString(), new RegExp(fp1.replace(/[+/]/g, (c) => `\\${c}`)));
        // Strict checking against the pinned key: a changed key would fail before auth (exit 255 with "HOST IDENTIFICATION HAS CHANGED").
        const r = await run(SSH, ['-F', '/dev/null', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'PubkeyAuthentication=no', '-p', String(second.ssh!.port), 'nobody-here@127.0.0.1', 'true']);
        assert.match(r.stderr, /Permission denied \(publickey\)/, 'got as far as authentication: the host key matched');
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

function tcpProbe(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}
