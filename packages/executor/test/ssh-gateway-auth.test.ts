import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FaasError } from '@faas/protocol';
import pino from 'pino';
import type { InteractiveProcess, InteractiveSpec } from '../src/runtime/types.ts';
import type { LoginAttempt, SshAuthority, SshKeyCheck } from '../src/ssh-gateway/auth.ts';
import { fingerprintOf, loadOrCreateHostKey } from '../src/ssh-gateway/host-key.ts';
import type { InstanceAccess } from '../src/ssh-gateway/instance-access.ts';
import { SshGateway, type SshGatewayLimits } from '../src/ssh-gateway/ssh-gateway.ts';
import { ClientDir, ssh, type SshTarget } from './fixtures/openssh-client.ts';
import { waitFor } from './fixtures/wait.ts';

/**
 * The gateway's protocol side against the real OpenSSH client, with a stand-in key authority
 * and instance access (processes run on the host here, in a temp dir): authentication rules,
 * audit calls, limits, hostile clients, exit statuses, env, forwarding rules. What runs inside
 * a real instance (PTY, sftp, scp, -L into its namespace) is test/ssh-gateway.test.ts.
 */

type KeyState = 'live' | 'expired' | 'revoked';

/** Keys by their wire blob, each for one instance. */
class TestAuthority implements SshAuthority {
  readonly keys = new Map<string, { instanceId: string; keyId: string; state: KeyState }>();
  readonly attempts: LoginAttempt[] = [];
  checks = 0;

  add(instanceId: string, publicKeyLine: string, keyId: string, state: KeyState = 'live'): void {
    this.keys.set(publicKeyLine.split(' ')[1]!, { instanceId, keyId, state });
  }

  async check(instanceId: string, keyBlob: Buffer): Promise<SshKeyCheck> {
    this.checks++;
    const fingerprint = fingerprintOf(keyBlob);
    if (!instances.has(instanceId)) throw new FaasError('INSTANCE_NOT_FOUND', `no instance with id ${instanceId}`, { instance_id: instanceId });
    const key = this.keys.get(keyBlob.toString('base64'));
    if (key === undefined) return { ok: false, fingerprint, reason: 'unknown_key' };
    if (key.instanceId !== instanceId) return { ok: false, fingerprint, reason: 'other_instance' };
    if (key.state !== 'live') return { ok: false, fingerprint, reason: key.state };
    return { ok: true, keyId: key.keyId, fingerprint };
  }

  async recordLoginAttempt(a: LoginAttempt): Promise<void> {
    this.attempts.push(a);
  }
}

const instances = new Set(['inst-a', 'inst-b']);
const workDir = mkdtempSync(join(tmpdir(), 'faas-ssh-fake-instance-'));

/** Host processes in a temp dir stand in for the instance's (the bridge and protocol are what is tested). */
const access: InstanceAccess = {
  async instanceEnv(id) {
    if (!instances.has(id)) throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${id} is stopped`, { instance_id: id });
    return { FROM_INSTANCE: 'yes' };
  },
  async execInteractive(_id: string, spec: InteractiveSpec): Promise<InteractiveProcess> {
    const child = spawn(spec.argv[0]!, spec.argv.slice(1), { env: { ...spec.env }, cwd: workDir, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    const started = Date.now();
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      resize() {},
      async signal(sig) {
        try {
          process.kill(-child.pid!, sig);
        } catch {
          // gone
        }
      },
      async wait() {
        const { code, signal } = await exited;
        return { exitCode: code, signal, oomKilled: false, durationMs: Date.now() - started };
      },
    };
  },
  async connect(_id, port, options) {
    if (options?.host !== '127.0.0.1') throw new FaasError('VALIDATION_FAILED', 'only loopback', {});
    const socket = netConnect({ host: '127.0.0.1', port });
    try {
      await once(socket, 'connect');
    } catch {
      socket.destroy();
      throw new FaasError('PORT_UNREACHABLE', `nothing listens on ${port}`, { port });
    }
    return socket;
  },
};

/** Everything the gateway logs, at debug level: checked for key material at the end. */
let logged = '';
const logger = pino({ level: 'debug' }, { write: (line: string) => void (logged += line) });
const client = new ClientDir();
const hostKeyDir = mkdtempSync(join(tmpdir(), 'faas-ssh-hostkey-'));
const gateways: SshGateway[] = [];

async function startGateway(authority: SshAuthority, limits: Partial<SshGatewayLimits> = {}): Promise<{ gateway: SshGateway; port: number }> {
  const gateway = new SshGateway({ host: '127.0.0.1', port: 0, hostKey: loadOrCreateHostKey(hostKeyDir), authority, access, logger, limits });
  gateways.push(gateway);
  const info = await gateway.listen();
  return { gateway, port: info.port };
}

let authority: TestAuthority;
let gateway: SshGateway;
let port: number;
const keys: Record<string, { file: string; publicKey: string }> = {};

before(async () => {
  const [ed25519, rsa, ecdsa, other, expired, revoked, stranger, a2, a3, a4] = await Promise.all([
    client.keygen('ed25519'),
    client.keygen('rsa'),
    client.keygen('ecdsa'),
    client.keygen('ed25519'),
    client.keygen('ed25519'),
    client.keygen('ed25519'),
    client.keygen('ed25519'),
    client.keygen('ed25519'),
    client.keygen('ed25519'),
    client.keygen('ed25519'),
  ]);
  Object.assign(keys, { ed25519, rsa, ecdsa, other, expired, revoked, stranger, a2, a3, a4 });
  authority = new TestAuthority();
  authority.add('inst-a', ed25519.publicKey, 'key-ed');
  authority.add('inst-a', rsa.publicKey, 'key-rsa');
  authority.add('inst-a', ecdsa.publicKey, 'key-ecdsa');
  authority.add('inst-b', other.publicKey, 'key-other');
  authority.add('inst-a', expired.publicKey, 'key-expired', 'expired');
  authority.add('inst-a', revoked.publicKey, 'key-revoked', 'revoked');
  ({ gateway, port } = await startGateway(authority, { handshakeTimeoutMs: 1_000, maxAuthFailures: 3, maxAddressFailures: 1_000 }));
});

after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  client.close();
  rmSync(workDir, { recursive: true, force: true });
  rmSync(hostKeyDir, { recursive: true, force: true });
});

function target(user: string, ...keyFiles: string[]): SshTarget {
  return { host: '127.0.0.1', port, user, keyFiles, knownHosts: client.knownHosts };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('SSH gateway: authentication', () => {
  for (const type of ['ed25519', 'rsa', 'ecdsa'] as const) {
    it(`logs in with a live ${type} key and audits one success (the unsigned query is not a login)`, async () => {
      const before = authority.attempts.length;
      const r = await ssh(target('inst-a', keys[type]!.file), ['echo', 'hello']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'hello\n');
      const mine = authority.attempts.slice(before);
      assert.deepEqual(
        mine.map((a) => [a.success, a.keyId, a.method]),
        [[true, `key-${type === 'ed25519' ? 'ed' : type}`, 'publickey']],
      );
      assert.match(mine[0]!.clientAddress, /^127\.0\.0\.1:\d+$/);
    });
  }

  for (const [name, user, reason] of [
    ['expired', 'inst-a', 'expired'],
    ['revoked', 'inst-a', 'revoked'],
    ['other', 'inst-a', 'other_instance'],
    ['stranger', 'inst-a', 'unknown_key'],
  ] as const) {
    it(`refuses a key that is ${reason} (ssh exits 255) and audits the refusal`, async () => {
      const before = authority.attempts.length;
      const r = await ssh(target(user, keys[name]!.file), ['true']);
      assert.equal(r.code, 255);
      assert.match(r.stderr, /Permission denied \(publickey\)/);
      const mine = authority.attempts.slice(before);
      assert.equal(mine.length, 1, JSON.stringify(mine));
      assert.equal(mine[0]!.success, false);
      assert.equal(mine[0]!.reason, reason);
      assert.equal(mine[0]!.instanceId, user);
    });
  }

  it('refuses an unknown instance, and a user name no instance can have without asking the key service', async () => {
    const r = await ssh(target('no-such-instance', keys.ed25519!.file), ['true']);
    assert.equal(r.code, 255);
    const checks = authority.checks;
    const bad = await ssh(target('Root', keys.ed25519!.file), ['true']);
    assert.equal(bad.code, 255);
    assert.equal(authority.checks, checks, 'no check() for an impossible user name');
  });

  it('offers publickey only: a client without a usable key is told so, and never asked for a password', async () => {
    const r = await ssh(target('inst-a', keys.ed25519!.file), ['true'], { extra: ['-o', 'PubkeyAuthentication=no', '-o', 'BatchMode=no', '-o', 'NumberOfPasswordPrompts=1'], input: 'secret\n' });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied \(publickey\)\./);
    assert.doesNotMatch(r.stderr, /password/i);
  });

  it('drops a connection after maxAuthFailures failed keys, without checking the rest', async () => {
    const checks = authority.checks;
    // Four unknown keys then a good one: the connection must end before the good one is tried.
    const r = await ssh(target('inst-a', keys.stranger!.file, keys.a2!.file, keys.a3!.file, keys.a4!.file, keys.ed25519!.file), ['true']);
    assert.equal(r.code, 255);
    assert.equal(authority.checks - checks, 3);
  });

  it('backs off an address after repeated failures, across connections, then even a good key is refused', async () => {
    const auth2 = new TestAuthority();
    auth2.add('inst-a', keys.ed25519!.publicKey, 'key-ed');
    const { port: port2 } = await startGateway(auth2, { maxAddressFailures: 2, addressWindowMs: 60_000 });
    const t = (k: string): SshTarget => ({ ...target('inst-a', k), port: port2 });
    for (let i = 0; i < 3; i++) assert.equal((await ssh(t(keys.stranger!.file), ['true'])).code, 255);
    const checks = auth2.checks;
    const r = await ssh(t(keys.ed25519!.file), ['true']);
    assert.equal(r.code, 255);
    assert.equal(auth2.checks, checks, 'refused before any key check');
  });

  it('does not back off a user whose client offers other keys before the right one', async () => {
    const auth3 = new TestAuthority();
    auth3.add('inst-a', keys.ed25519!.publicKey, 'key-ed');
    const { port: port3 } = await startGateway(auth3, { maxAddressFailures: 2, addressWindowMs: 60_000 });
    for (let i = 0; i < 4; i++) {
      const r = await ssh({ ...target('inst-a', keys.stranger!.file, keys.a2!.file, keys.ed25519!.file), port: port3 }, ['true']);
      assert.equal(r.code, 0, `login ${i}: ${r.stderr}`);
    }
  });
});

describe('SSH gateway: hostile and broken clients', () => {
  /** A raw TCP client; `closed` resolves when the server has closed it (listening from the start). */
  async function rawSocket(): Promise<{ socket: Socket; closed: Promise<unknown> }> {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    const closed = once(socket, 'close');
    socket.resume(); // read, or the server's close is never seen
    await once(socket, 'connect');
    return { socket, closed };
  }

  it('survives garbage, a half handshake and a silent client, closes them, and still serves a login', async () => {
    const garbage = await rawSocket();
    garbage.socket.write(randomBytes(64 * 1024));
    const halfVersion = await rawSocket();
    halfVersion.socket.write('SSH-2.0-OpenSSH_9.2\r\n');
    halfVersion.socket.write(randomBytes(300)); // a KEXINIT that is not one
    const banner = await rawSocket();
    banner.socket.end('SSH-2.0-x\r\n'); // version line, then gone
    const silent = await rawSocket();
    const r = await ssh(target('inst-a', keys.ed25519!.file), ['echo', 'still here']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'still here\n');
    // The silent one goes at the handshake deadline (1 s here).
    await Promise.all([garbage.closed, halfVersion.closed, banner.closed, silent.closed]);
    assert.ok(await waitFor(() => gateway.connectionCount === 0, 3_000), `connections left: ${gateway.connectionCount}`);
  });

  it('caps unauthenticated connections per address: the one past the cap is closed at once', async () => {
    const { port: port3 } = await startGateway(new TestAuthority(), { maxUnauthenticatedPerAddress: 3, handshakeTimeoutMs: 10_000 });
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = netConnect({ host: '127.0.0.1', port: port3 });
      s.on('error', () => {});
      s.resume();
      await once(s, 'connect');
      held.push(s);
    }
    await new Promise((r) => setTimeout(r, 100));
    const extra = netConnect({ host: '127.0.0.1', port: port3 });
    extra.on('error', () => {});
    extra.resume();
    const t0 = Date.now();
    await once(extra, 'close');
    assert.ok(Date.now() - t0 < 2_000);
    for (const s of held) s.destroy();
  });
});

describe('SSH gateway: sessions', () => {
  it('returns the exit status, keeps stdout and stderr apart, and passes stdin byte for byte', async () => {
    const r = await ssh(target('inst-a', keys.ed25519!.file), ['echo out; echo err >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout.toString(), 'out\n');
    assert.equal(r.stderr, 'err\n');
    const data = randomBytes(3 * 1024 * 1024);
    const c = await ssh(target('inst-a', keys.ed25519!.file), ['cat'], { input: data });
    assert.equal(c.code, 0, c.stderr);
    assert.equal(sha256(c.stdout), sha256(data));
  });

  it('reports death by signal as exit-signal (ssh exits 255)', async () => {
    const r = await ssh(target('inst-a', keys.ed25519!.file), ['kill -TERM $$'], { extra: ['-o', 'LogLevel=DEBUG'] });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /exit-signal/);
  });

  it('takes LANG/LC_* from the client, ignores other names, and gives the instance env and SSH_CONNECTION', async () => {
    const r = await ssh(target('inst-a', keys.ed25519!.file), ['echo "$LC_FOO|$EVIL|$FROM_INSTANCE|$USER|$HOME|${SSH_CONNECTION%% *}"'], {
      extra: ['-o', 'SetEnv=LC_FOO=bar EVIL=1'],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'bar||yes|user|/home/user|127.0.0.1\n');
  });

  it('ends the sessions of an instance that ends', async () => {
    const running = ssh(target('inst-a', keys.ed25519!.file), ['sleep 30']);
    assert.ok(await waitFor(() => gateway.connectionCount > 0, 5_000));
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    gateway.endInstance('inst-a', 'deleted');
    const r = await running;
    assert.notEqual(r.code, 0);
    assert.ok(Date.now() - t0 < 5_000, `ssh took ${Date.now() - t0} ms to notice`);
  });
});

describe('SSH gateway: forwarding', () => {
  let echo: Server;
  let echoPort: number;
  before(async () => {
    echo = createServer((s) => s.pipe(s));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    echoPort = (echo.address() as { port: number }).port;
  });
  after(() => echo.close());

  it('forwards a direct-tcpip channel (ssh -W) through the instance access, both ways', async () => {
    const r = await ssh(target('inst-a', keys.ed25519!.file), [], { extra: ['-W', `127.0.0.1:${echoPort}`], input: 'ping\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'ping\n');
  });

  it('refuses a destination the instance cannot reach with a channel open failure', async () => {
    const closedPort = await freePort();
    const r = await ssh(target('inst-a', keys.ed25519!.file), [], { extra: ['-W', `127.0.0.1:${closedPort}`] });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /open failed/);
  });

  it('refuses remote forwarding (-R)', async () => {
    const r = await ssh(target('inst-a', keys.ed25519!.file), [], { extra: ['-N', '-R', `0:127.0.0.1:${echoPort}`, '-o', 'ExitOnForwardFailure=yes'] });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /remote port forwarding failed/);
  });
});

describe('SSH gateway: logs', () => {
  it('never log key material: no private key, no host key', () => {
    assert.ok(logged.includes('ssh login'), 'the logins above were logged');
    assert.doesNotMatch(logged, /PRIVATE KEY/);
    const hostKeyBody = loadOrCreateHostKey(hostKeyDir).privateKey.split('\n').slice(1, -2).join('');
    assert.ok(!logged.includes(hostKeyBody.slice(0, 40)));
    for (const k of Object.values(keys)) {
      const body = readFileSync(k.file, 'utf8').split('\n').slice(1, -2).join('');
      assert.ok(!logged.includes(body.slice(0, 40)), 'a client private key in the log');
    }
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}
