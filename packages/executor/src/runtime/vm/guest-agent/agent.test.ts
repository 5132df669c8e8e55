import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AgentClient, type AgentExecSpec } from './agent-client.ts';
import { encodeFrame, encodeJson, FrameType } from './agent-frames.ts';

const AGENT = fileURLToPath(new URL('./agent.py', import.meta.url));
const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;
const ENV = { PATH: '/usr/bin:/bin', LANG: 'C' };

/** The real agent.py on this host (--no-pid1), connecting to a unix socket the test listens on. */
class AgentUnderTest {
  readonly dir = mkdtempSync(join(tmpdir(), 'faas-agent-'));
  readonly socketPath = join(this.dir, 'a.sock');
  readonly server: Server;
  readonly child: ChildProcess;
  stderr = '';
  private readonly accepted: Socket[] = [];
  private waiting: ((socket: Socket) => void) | undefined;

  constructor() {
    this.server = createServer((socket) => {
      const waiter = this.waiting;
      this.waiting = undefined;
      if (waiter) waiter(socket);
      else this.accepted.push(socket);
    }).listen(this.socketPath);
    this.child = spawn('python3', [AGENT, '--socket', this.socketPath, '--no-pid1'], { stdio: ['ignore', 'inherit', 'pipe'] });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-20_000)));
  }

  /** The agent's next connection (it reconnects 20 ms after losing one). */
  nextSocket(): Promise<Socket> {
    const ready = this.accepted.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /** The host end of the current connection, to write raw frames on. */
  socket: Socket | undefined;

  async connect(): Promise<AgentClient> {
    this.socket = await this.nextSocket();
    return AgentClient.fromSocket(this.socket, {}, { timeoutMs: 10_000 });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  stop(): void {
    this.child.kill('SIGKILL');
    this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function spec(argv: string[], extra: Partial<AgentExecSpec> = {}): AgentExecSpec {
  return { argv, env: ENV, cwd: '/', uid, gid, ...extra };
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function run(client: AgentClient, s: AgentExecSpec) {
  const proc = await client.exec(s);
  const [stdout, stderr, exit] = await Promise.all([collect(proc.stdout), collect(proc.stderr), proc.wait()]);
  return { stdout: stdout.toString(), stderr: stderr.toString(), ...exit };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

/** Pids of host processes whose command line is exactly `command` (the agent runs on the host here). */
function processesRunning(command: string): string[] {
  return spawnSync('pgrep', ['-fx', command], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

describe('guest agent (agent.py on the host, --no-pid1)', () => {
  let agent: AgentUnderTest;
  let client: AgentClient;

  before(async () => {
    agent = new AgentUnderTest();
    client = await agent.connect();
  });

  after(() => {
    client.close();
    agent.stop();
  });

  test('separates stdout and stderr and reports the exit code', async () => {
    const r = await run(client, spec(['sh', '-c', 'echo out; echo err >&2; exit 3']));
    assert.deepEqual([r.stdout, r.stderr, r.exitCode, r.signal, r.oomKilled], ['out\n', 'err\n', 3, null, false]);
  });

  test('writes a stdin buffer then closes it', async () => {
    const r = await run(client, spec(['cat'], { stdin: Buffer.from('hello\nworld') }));
    assert.equal(r.stdout, 'hello\nworld');
  });

  test('gives the process exactly the given environment and working directory', async () => {
    const r = await run(client, spec(['/usr/bin/env'], { env: { ONLY: 'this', PATH: '/bin' }, cwd: agent.dir }));
    assert.equal(r.stdout, 'ONLY=this\nPATH=/bin\n');
    const pwd = await run(client, spec(['pwd'], { cwd: agent.dir }));
    assert.equal(pwd.stdout.trim(), agent.dir);
  });

  test('forwards progress lines written to fd 3', async () => {
    const lines: string[] = [];
    const r = await run(client, spec(['sh', '-c', 'echo one >&3; echo two >&3; echo done'], { onProgress: (l) => lines.push(l) }));
    assert.equal(r.stdout, 'done\n');
    assert.deepEqual(lines, ['one', 'two']);
  });

  test('reports a missing command, an unusable working directory, an invalid request', async () => {
    await assert.rejects(client.exec(spec(['no-such-command-xyz'])), (e: { code: string; details: { reason: string } }) => e.code === 'RUNTIME_ERROR' && e.details.reason === 'COMMAND_NOT_FOUND');
    await assert.rejects(client.exec(spec(['true'], { cwd: '/no/such/dir' })), (e: { details: { reason: string } }) => e.details.reason === 'INVALID_CWD');
    await assert.rejects(client.exec(spec([])), (e: { details: { reason: string } }) => e.details.reason === 'SPAWN_FAILED');
    assert.equal((await run(client, spec(['true']))).exitCode, 0);
  });

  test('copies 5 MB of binary stdin through cat byte for byte', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const proc = await client.exec(spec(['cat'], { stdin: 'stream' }));
    const output = collect(proc.stdout);
    proc.stdin.end(data);
    assert.ok((await output).equals(data));
    assert.equal((await proc.wait()).exitCode, 0);
  });

  test('a consumer that stops reading stops the process, with bounded buffering', async () => {
    // 20 MB of output; nobody reads stdout for a while.
    const proc = await client.exec(spec(['head', '-c', '20000000', '/dev/zero']));
    await sleep(500);
    assert.ok(proc.stdout.readableLength <= 256 * 1024, `host buffered ${proc.stdout.readableLength}`);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.child.pid}/status`, 'utf8'))?.[1]);
    assert.ok(rss < 60_000, `agent RSS ${rss} kB`);
    assert.equal((await collect(proc.stdout)).length, 20_000_000);
    assert.equal((await proc.wait()).exitCode, 0);
  });

  test('an exec whose output is not read does not stall another', async () => {
    const stalled = await client.exec(spec(['head', '-c', '10000000', '/dev/zero']));
    const r = await run(client, spec(['sh', '-c', 'head -c 3000000 /dev/zero | wc -c']));
    assert.equal(r.stdout.trim(), '3000000');
    await stalled.signal('SIGKILL');
    stalled.stdout.resume();
    assert.equal((await stalled.wait()).signal, 'SIGKILL');
  });

  test('SIGKILL ends the whole tree; signal names are reported', async () => {
    const marker = `sleep ${1000 + Math.floor(Math.random() * 100_000)}`;
    const tree = await client.exec(spec(['sh', '-c', `${marker} & ${marker}`]));
    await until(() => processesRunning(marker).length === 2);
    await tree.signal('SIGKILL');
    assert.equal((await tree.wait()).signal, 'SIGKILL');
    await until(() => processesRunning(marker).length === 0);

    const term = await client.exec(spec(['sleep', '100']));
    await term.signal('SIGTERM');
    assert.deepEqual([(await term.wait()).signal, (await term.wait()).exitCode], ['SIGTERM', null]);
  });

  test('wait() resolves while a background process still holds stdout', async () => {
    const started = Date.now();
    const proc = await client.exec(spec(['sh', '-c', 'echo main; sleep 30 & exit 0']));
    const [stdout, exit] = await Promise.all([collect(proc.stdout), proc.wait()]);
    assert.deepEqual([stdout.toString(), exit.exitCode], ['main\n', 0]);
    assert.ok(Date.now() - started < 2_000);
    process.kill(-proc.pid, 'SIGKILL'); // the background sleep (its process group, without cgroups)
  });

  test('runs under a pty: tty, size, resize, ^C', async () => {
    const tty = await run(client, spec(['tty'], { pty: { cols: 80, rows: 24 } }));
    assert.match(tty.stdout, /^\/dev\/pts\/\d+\r\n$/);
    const size = await run(client, spec(['stty', 'size'], { pty: { cols: 91, rows: 33 } }));
    assert.equal(size.stdout, '33 91\r\n');

    const script = 'trap "stty size" WINCH; echo ready; while :; do sleep 0.05; done';
    const proc = await client.exec(spec(['sh', '-c', script], { pty: { cols: 80, rows: 24 }, stdin: 'stream' }));
    let seen = '';
    proc.stdout.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    await until(() => seen.includes('ready'));
    proc.resize(120, 40);
    await until(() => seen.includes('40 120'));
    proc.stdin.write('\x03');
    const exit = await proc.wait();
    assert.equal(exit.signal, 'SIGINT');
  });

  test('connects to a TCP port on the loopback; a closed port is PORT_UNREACHABLE', async () => {
    const server = await client.exec(spec(['python3', '-m', 'http.server', '--bind', '127.0.0.1', '0'], { env: { ...ENV, PYTHONUNBUFFERED: '1' } }));
    let out = '';
    server.stdout.on('data', (c: Buffer) => (out += c.toString()));
    server.stderr.resume();
    await until(() => /port (\d+)/.test(out));
    const port = Number(/port (\d+)/.exec(out)![1]);
    const socket = await client.connectTcp('127.0.0.1', port, 2_000);
    socket.end('GET / HTTP/1.0\r\n\r\n');
    const response = (await collect(socket)).toString();
    assert.match(response, /^HTTP\/1\.0 200/);
    await server.signal('SIGKILL');
    await server.wait();

    const closed = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => closed.once('listening', r));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await assert.rejects(client.connectTcp('127.0.0.1', freePort, 2_000), { code: 'PORT_UNREACHABLE' });
    await assert.rejects(client.connectTcp('192.0.2.1', 80, 2_000), { code: 'VALIDATION_FAILED' });
  });

  test('answers ping; freeze is a reported no-op outside a guest', async () => {
    assert.ok((await client.ping()) >= 0);
    await client.freezeFs();
    await client.thawFs();
  });

  test('survives malformed frames', async () => {
    const socket = agent.socket!;
    socket.write(encodeFrame(0x7f as FrameType, 0, Buffer.from('x')));
    socket.write(encodeFrame(FrameType.PING, 0, Buffer.from('{not json')));
    socket.write(encodeJson(FrameType.EXEC, 999, { argv: 'not a list' }));
    assert.ok((await client.ping()) >= 0);
    // A length no frame can have: the agent reports it and waits for a new HELLO.
    const lost = new Promise<Error | undefined>((resolve) => client.onClose(resolve));
    socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0]));
    assert.match(String((await lost)?.message), /protocol error/);
    assert.ok(agent.alive);
    assert.match(agent.stderr, /unknown control frame type 127 dropped/);
    client = await agent.connect();
    assert.equal((await run(client, spec(['echo', 'still here']))).stdout, 'still here\n');
  });

  test('after a reconnect, earlier processes keep running and new execs work', async () => {
    const counter = join(agent.dir, 'counter');
    // Appends (a rewrite could be read half done); it also writes to stdout, which nobody reads after the reconnect.
    const loop = await client.exec(spec(['sh', '-c', `while :; do echo tick >> ${counter}; echo tick; sleep 0.02; done`]));
    await until(() => existsSync(counter));
    client.close();
    client = await agent.connect();
    assert.equal(client.info?.pidCount, 1);
    const before = statSync(counter).size;
    await sleep(300);
    assert.ok(statSync(counter).size > before, 'the counter stopped');
    assert.equal((await run(client, spec(['echo', 'new']))).stdout, 'new\n');
    process.kill(-loop.pid, 'SIGKILL');
  });

  test('connect() retries until the socket exists, then fails after its timeout', async () => {
    client.close();
    // The agent (test mode) connects out, as connect() does: a relay in between plays QEMU's chardev.
    const relayPath = join(agent.dir, 'relay.sock');
    const connecting = AgentClient.connect(relayPath, { nowMs: Date.now() }, { timeoutMs: 10_000 });
    await sleep(200);
    const agentSide = await agent.nextSocket();
    const relay = createServer((host) => {
      host.pipe(agentSide);
      agentSide.pipe(host);
    }).listen(relayPath);
    client = await connecting;
    assert.equal((await run(client, spec(['echo', 'relayed']))).stdout, 'relayed\n');
    relay.close();
    await assert.rejects(AgentClient.connect(join(agent.dir, 'none.sock'), {}, { timeoutMs: 200 }), { code: 'RUNTIME_ERROR' });
  });
});
