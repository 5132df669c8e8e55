import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ALL_ERROR_CODES, ERROR_STATUS, type ReadinessEvent, type ReadinessRoundEvent } from '@faas/protocol';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/**
 * End-to-end: readiness probes (docs/readiness.md) against services running inside real bwrap
 * instances: each probe type passing and failing, Kubernetes thresholds with a service whose
 * answers flip, initial delay, per-probe timeouts, detection latency, timeouts with every
 * probe's last failure, loopback-only services, the streaming variant and bad configs.
 */

let server: TestServer;
let instanceId: string;

/**
 * A small HTTP service: /health answers 200 while /workspace/healthy exists, else 503; /seq
 * answers the next status of /workspace/seq-PORT (one per line), then 200 once it is empty.
 * argv: PORT [DELAY_S]: binds 127.0.0.1 only, after DELAY_S, then writes its bind time
 * (time.time()) to /workspace/bound-PORT.
 */
const SERVICE = String.raw`
import http.server, os, sys, time
port = int(sys.argv[1])
if len(sys.argv) > 2: time.sleep(float(sys.argv[2]))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == '/seq':
            name = '/workspace/seq-%d' % port
            try:
                with open(name) as f: lines = f.read().split()
            except FileNotFoundError: lines = []
            status = int(lines[0]) if lines else 200
            with open(name, 'w') as f: f.write('\n'.join(lines[1:]))
        elif self.path == '/health':
            status = 200 if os.path.exists('/workspace/healthy') else 503
        elif self.path == '/redirect':
            status = 302
        else:
            status = 404
        body = ('%s %d' % ('up' if status < 400 else 'down', status)).encode()
        self.send_response(status)
        if status == 302: self.send_header('location', '/elsewhere')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
class S(http.server.HTTPServer): allow_reuse_address = True
srv = S(('127.0.0.1', port), H)
with open('/workspace/bound-%d' % port, 'w') as f: f.write(repr(time.time()))
srv.serve_forever()
`;

/** Accepts connections and never answers. argv: PORT. */
const HANG = String.raw`
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(64)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
`;

type Res = { status: number; body: any; text: string };

async function exec(code: string, instance = instanceId): Promise<any> {
  const res = await server.request('POST', `/api/v1/instances/${instance}/exec`, { code });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

function readiness(body: unknown, instance = instanceId): Promise<Res> {
  return server.request('POST', `/api/v1/instances/${instance}/readiness`, body);
}

/** The streaming variant: every event, in order. */
async function readinessEvents(body: unknown, instance = instanceId): Promise<ReadinessEvent[]> {
  const res = await fetch(`${server.url}/api/v1/instances/${instance}/readiness`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.apiKey}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: ReadinessEvent[] = [];
  for (const block of (await res.text()).split('\n\n')) {
    const lines = block.split('\n');
    const name = lines.find((l) => l.startsWith('event: '))?.slice(7);
    const data = lines.find((l) => l.startsWith('data: '));
    if (data === undefined) continue;
    const event = JSON.parse(data.slice(6)) as ReadinessEvent;
    assert.equal(event.type, name, 'the SSE event name is the event type');
    events.push(event);
  }
  return events;
}

/** Starts the HTTP service on `port` in the background and waits (with a readiness wait) until it answers. */
async function startService(port: number, instance = instanceId): Promise<void> {
  await exec(`python3 /workspace/service.py ${port} >/dev/null 2>&1 &`, instance);
  const res = await readiness({ probes: [{ type: 'tcp', port }], wait: true, period_ms: 50, wait_timeout_ms: 10_000 }, instance);
  assert.equal(res.body.ready, true, res.text);
}

function assertError(res: Res, status: number, code: string): any {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.deepEqual(Object.keys(res.body), ['error']);
  assert.equal(res.body.error.code, code);
  assert.ok(ALL_ERROR_CODES.includes(res.body.error.code));
  assert.equal(ERROR_STATUS[code as keyof typeof ERROR_STATUS], status);
  return res.body.error;
}

before(async () => {
  server = await startTestServer({ sshPort: null });
  const res = await server.request('POST', '/api/v1/instances', { metadata: { file: 'readiness' } });
  assert.equal(res.status, 201, res.text);
  instanceId = res.body.id;
  await exec(`cat > /workspace/service.py <<'EOF'\n${SERVICE}\nEOF\ncat > /workspace/hang.py <<'EOF'\n${HANG}\nEOF`);
  await startService(8000);
});

after(async () => {
  await server?.close();
});

describe('probe types', () => {
  it('http passes on 200-399 by default and fails on 503, a refused port, or an unexpected status', async () => {
    await exec('touch /workspace/healthy');
    const ok = await readiness({ probes: [{ type: 'http', port: 8000, path: '/health' }] });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.ready, true);
    assert.deepEqual(Object.keys(ok.body).sort(), ['checks_performed', 'consecutive_failures', 'consecutive_successes', 'elapsed_ms', 'failed', 'last_check', 'message', 'probes', 'ready', 'timed_out']);
    assert.deepEqual(Object.keys(ok.body.probes[0]).sort(), ['last_failure', 'latency_ms', 'message', 'ok', 'type']);
    assert.equal(ok.body.probes[0].message, 'HTTP 200 from 127.0.0.1:8000/health');
    assert.equal(ok.body.checks_performed, 1);

    await exec('rm -f /workspace/healthy');
    const down = await readiness({ probes: [{ type: 'http', port: 8000, path: '/health' }] });
    assert.equal(down.body.ready, false);
    assert.equal(down.body.timed_out, false);
    assert.match(down.body.probes[0].message, /HTTP 503 from 127\.0\.0\.1:8000\/health \(expected 200-399\): down 503/);

    const refused = await readiness({ probes: [{ type: 'http', port: 8999 }] });
    assert.equal(refused.body.ready, false);
    assert.match(refused.body.probes[0].message, /nothing accepts connections at 127\.0\.0\.1:8999/);

    const expected = await readiness({ probes: [{ type: 'http', port: 8000, path: '/health', expected_status: [503] }] });
    assert.equal(expected.body.ready, true, 'expected_status replaces 200-399');
  });

  it('http does not follow redirects, and checks expected_body', async () => {
    const redirect = await readiness({ probes: [{ type: 'http', port: 8000, path: '/redirect' }] });
    assert.equal(redirect.body.ready, true);
    assert.equal(redirect.body.probes[0].message, 'HTTP 302 from 127.0.0.1:8000/redirect');
    const only200 = await readiness({ probes: [{ type: 'http', port: 8000, path: '/redirect', expected_status: [200] }] });
    assert.equal(only200.body.ready, false);

    await exec('touch /workspace/healthy');
    const body = await readiness({ probes: [{ type: 'http', port: 8000, path: '/health', expected_body: 'up 200' }] });
    assert.equal(body.body.ready, true, body.text);
    const wrong = await readiness({ probes: [{ type: 'http', port: 8000, path: '/health', expected_body: 'ready!' }] });
    assert.equal(wrong.body.ready, false);
    assert.match(wrong.body.probes[0].message, /the body lacks "ready!": up 200/);
  });

  it('tcp passes when something accepts and fails when the port is refused', async () => {
    const ok = await readiness({ probes: [{ type: 'tcp', port: 8000 }] });
    assert.equal(ok.body.ready, true);
    assert.equal(ok.body.probes[0].message, 'connected to 127.0.0.1:8000');
    const refused = await readiness({ probes: [{ type: 'tcp', port: 8999 }] });
    assert.equal(refused.body.ready, false);
    assert.match(refused.body.probes[0].message, /ECONNREFUSED/);
  });

  it('command passes on exit 0 inside the instance and fails with its exit code and (short) output', async () => {
    await exec('touch /workspace/marker');
    const ok = await readiness({ probes: [{ type: 'command', code: 'test -f /workspace/marker && echo seen' }] });
    assert.equal(ok.body.ready, true, ok.text);
    assert.equal(ok.body.probes[0].message, 'test -f /workspace/marker && echo seen: exit 0: seen');
    const argv = await readiness({ probes: [{ type: 'command', command: ['sh', '-c', 'echo "$(id -u) $FAAS_INSTANCE_ID"; exit 4'] }] });
    assert.equal(argv.body.ready, false);
    assert.equal(argv.body.probes[0].message, `sh -c echo "$(id -u) $FAAS_INSTANCE_ID"; exit 4: exit 4: 1000 ${instanceId}`);
    const long = await readiness({ probes: [{ type: 'command', code: 'yes x | head -c 100000; exit 1' }] });
    assert.ok(long.body.probes[0].message.length <= 300, 'output is cut short in the message');
  });

  it('file passes when the path exists inside the instance (non_empty: with content), never looking at the host', async () => {
    await exec('rm -rf /workspace/f; mkdir -p /workspace/f; : > /workspace/f/empty; echo hi > /workspace/f/full; ln -s /workspace/f/full /workspace/f/link; ln -s /etc/hostname /workspace/f/host-link');
    const exists = await readiness({ probes: [{ type: 'file', path: '/workspace/f/empty' }] });
    assert.equal(exists.body.ready, true, exists.text);
    const empty = await readiness({ probes: [{ type: 'file', path: '/workspace/f/empty', non_empty: true }] });
    assert.equal(empty.body.ready, false);
    assert.equal(empty.body.probes[0].message, '/workspace/f/empty exists but is empty');
    const full = await readiness({ probes: [{ type: 'file', path: '/workspace/f/full', non_empty: true }] });
    assert.equal(full.body.probes[0].message, '/workspace/f/full exists, 3 bytes');
    const link = await readiness({ probes: [{ type: 'file', path: '/workspace/f/link', non_empty: true }] });
    assert.equal(link.body.ready, true, 'a symlink is followed inside the instance');
    const missing = await readiness({ probes: [{ type: 'file', path: '/workspace/f/none' }] });
    assert.equal(missing.body.probes[0].message, '/workspace/f/none does not exist');
    // The server's data dir exists on the host, not inside the instance: the instance's own tree decides.
    assert.ok(existsSync(server.dataDir));
    assert.equal((await exec(`test -e ${server.dataDir}; echo $?`)).stdout, '1\n');
    const hostOnly = await readiness({ probes: [{ type: 'file', path: server.dataDir }] });
    assert.equal(hostOnly.body.ready, false);
    assert.equal(hostOnly.body.probes[0].message, `${server.dataDir} does not exist`);
    const hostLink = await readiness({ probes: [{ type: 'file', path: '/workspace/f/host-link' }] });
    assert.equal(hostLink.body.ready, true, 'a link to /etc/hostname resolves to the instance\'s own /etc/hostname');
    const escape = await readiness({ probes: [{ type: 'file', path: '/workspace/f/../../../../etc/passwd' }] });
    assertError(escape, 400, 'INVALID_PROBE');
  });

  it('log passes once a line of the execution output matches, and fails (saying so) before', async () => {
    const started = await server.request('POST', `/api/v1/instances/${instanceId}/exec`, { code: 'echo booting; sleep 0.6; echo "listening on :9000" >&2; sleep 30', background: true });
    assert.equal(started.status, 202, started.text);
    const execId = started.body.id;
    const before = await readiness({ probes: [{ type: 'log', execution_id: execId, pattern: '^listening on :\\d+$' }] });
    assert.equal(before.body.ready, false);
    assert.match(before.body.probes[0].message, /no line of the output of exec-\S+ \(running\) matches/);
    const stdoutOnly = { type: 'log', execution_id: execId, pattern: 'listening', stream: 'stdout' };
    const waited = await readiness({ probes: [{ type: 'log', execution_id: execId, pattern: '^listening on :\\d+$' }], wait: true, period_ms: 50, wait_timeout_ms: 5000 });
    assert.equal(waited.body.ready, true, waited.text);
    assert.match(waited.body.probes[0].message, /stderr of exec-\S+ has "listening on :9000"/);
    const wrongStream = await readiness({ probes: [stdoutOnly] });
    assert.equal(wrongStream.body.ready, false, 'stream: stdout does not search stderr');
    await server.request('POST', `/api/v1/executions/${execId}/kill`, {});
  });
});

describe('thresholds (Kubernetes meanings) against a service whose answers flip', () => {
  it('ready after success_threshold consecutive passing rounds; a failing round resets the count', async () => {
    await exec('printf "503\\n200\\n200\\n503\\n200\\n200\\n200\\n" > /workspace/seq-8000');
    const events = await readinessEvents({ probes: [{ type: 'http', port: 8000, path: '/seq' }], wait: true, period_ms: 50, success_threshold: 3, wait_timeout_ms: 10_000 });
    const rounds = events.filter((e): e is ReadinessRoundEvent => e.type === 'probe');
    assert.deepEqual(rounds.map((r) => r.ok), [false, true, true, false, true, true, true]);
    assert.deepEqual(rounds.map((r) => r.consecutive_successes), [0, 1, 2, 0, 1, 2, 3]);
    assert.deepEqual(rounds.map((r) => r.consecutive_failures), [1, 0, 0, 1, 0, 0, 0]);
    assert.deepEqual(rounds.map((r) => r.ready), [false, false, false, false, false, false, true]);
    const last = events.at(-1)!;
    assert.equal(last.type, 'ready');
    assert.equal((last as any).checks_performed, 7);
  });

  it('with stop_on_failure a wait ends as failed after failure_threshold consecutive failures, a pass resetting the count', async () => {
    await exec('printf "200\\n503\\n503\\n200\\n503\\n503\\n503\\n200\\n" > /workspace/seq-8000');
    const res = await readiness({ probes: [{ type: 'http', port: 8000, path: '/seq' }], wait: true, period_ms: 50, success_threshold: 2, failure_threshold: 3, stop_on_failure: true });
    assert.equal(res.body.ready, false, res.text);
    assert.equal(res.body.failed, true);
    assert.equal(res.body.timed_out, false);
    assert.equal(res.body.checks_performed, 7);
    assert.equal(res.body.consecutive_failures, 3);
    assert.match(res.body.message, /^failed: 3 consecutive rounds failed \(failure_threshold 3\)/);
    await exec('rm -f /workspace/seq-8000');
  });

  it('a one-shot check with success_threshold 2 runs two rounds and stops at the first failure', async () => {
    await exec('printf "200\\n503\\n" > /workspace/seq-8000');
    const first = await readiness({ probes: [{ type: 'http', port: 8000, path: '/seq' }], success_threshold: 2, period_ms: 50 });
    assert.equal(first.body.ready, false);
    assert.equal(first.body.checks_performed, 2);
    assert.equal(first.body.consecutive_failures, 1);
    const second = await readiness({ probes: [{ type: 'http', port: 8000, path: '/seq' }], success_threshold: 2, period_ms: 50 });
    assert.equal(second.body.ready, true, 'the sequence is used up: 200, 200');
    assert.equal(second.body.checks_performed, 2);
  });

  it('flips with a file created and deleted through exec: not ready, ready, not ready', async () => {
    const probe = { probes: [{ type: 'http', port: 8000, path: '/health' }] };
    await exec('rm -f /workspace/healthy');
    assert.equal((await readiness(probe)).body.ready, false);
    await exec('touch /workspace/healthy');
    assert.equal((await readiness(probe)).body.ready, true);
    await exec('rm -f /workspace/healthy');
    assert.equal((await readiness(probe)).body.ready, false);
  });

  it('all probes must pass in the same round', async () => {
    await exec('touch /workspace/healthy');
    const res = await readiness({ probes: [{ type: 'http', port: 8000, path: '/health' }, { type: 'tcp', port: 8999 }] });
    assert.equal(res.body.ready, false);
    assert.deepEqual(res.body.probes.map((p: any) => p.ok), [true, false]);
  });
});

describe('timing', () => {
  it('honours initial_delay_ms before the first round', async () => {
    const sent = Date.now();
    const res = await readiness({ probes: [{ type: 'tcp', port: 8000 }], initial_delay_ms: 400 });
    assert.equal(res.body.ready, true);
    assert.equal(res.body.checks_performed, 1);
    assert.ok(res.body.elapsed_ms >= 400, `elapsed ${res.body.elapsed_ms}`);
    assert.ok(Date.parse(res.body.last_check) - sent >= 400 - 5, 'the only round ended after the delay');
  });

  it('a probe times out against a server that accepts but never answers, after its own timeout_ms', async () => {
    await exec('python3 /workspace/hang.py 8100 >/dev/null 2>&1 &');
    const up = await readiness({ probes: [{ type: 'tcp', port: 8100 }], wait: true, period_ms: 50, wait_timeout_ms: 10_000 });
    assert.equal(up.body.ready, true, 'the hanging server accepts connections');
    const res = await readiness({ probes: [{ type: 'http', port: 8100, timeout_ms: 300 }, { type: 'tcp', port: 8000 }], timeout_ms: 5000 });
    assert.equal(res.body.ready, false);
    const [http, tcp] = res.body.probes;
    assert.match(http.message, /no answer within \d+ ms \(probe timeout\)/);
    assert.ok(http.latency_ms >= 290 && http.latency_ms < 2000, `latency ${http.latency_ms}`);
    assert.equal(tcp.ok, true, 'the other probe of the round is unaffected');
    assert.ok(res.body.elapsed_ms < 2500, 'the request-wide 5 s default did not apply to the probe that set 300 ms');

    const cmd = await readiness({ probes: [{ type: 'command', code: 'sleep 10', timeout_ms: 300 }] });
    assert.equal(cmd.body.ready, false);
    assert.match(cmd.body.probes[0].message, /still running after 300 ms \(probe timeout\), killed/);
    assert.ok(cmd.body.elapsed_ms < 2500, `elapsed ${cmd.body.elapsed_ms}`);
  });

  it('reports ready within one period of the service binding its port', async () => {
    const port = 8200;
    await exec(`rm -f /workspace/bound-${port}; python3 /workspace/service.py ${port} 0.7 >/dev/null 2>&1 &`);
    const events = await readinessEvents({ probes: [{ type: 'http', port, path: '/redirect' }], wait: true, period_ms: 50, wait_timeout_ms: 10_000 });
    const boundAt = Number((await exec(`cat /workspace/bound-${port}`)).stdout) * 1000;
    const rounds = events.filter((e): e is ReadinessRoundEvent => e.type === 'probe');
    assert.equal(events.at(-1)!.type, 'ready');
    const firstOk = rounds.findIndex((r) => r.ok);
    assert.equal(firstOk, rounds.length - 1);
    assert.ok(firstOk >= 1, 'some rounds ran before the service was up');
    // Every failed round started before the bind: the first round that started after it passed.
    // (A round starts latency_ms before its end time.) This holds however slow the machine is.
    const lastFailed = rounds[firstOk - 1]!;
    const lastFailedStart = Date.parse(lastFailed.time) - Math.max(...lastFailed.probes.map((p) => p.latency_ms)) - 1;
    assert.ok(lastFailedStart <= boundAt + 5, `a round starting ${lastFailedStart - boundAt} ms after the bind failed`);
    // And the rounds were period_ms apart, so ready came within about one period of the bind.
    const detectedAfter = Date.parse(rounds[firstOk]!.time) - boundAt;
    assert.ok(detectedAfter < 50 + 500, `ready reported ${detectedAfter} ms after the bind`);
  });

  it('a timeout returns every probe\'s last failure', async () => {
    await exec('rm -f /workspace/healthy');
    const res = await readiness({
      probes: [
        { type: 'http', port: 8000, path: '/health' },
        { type: 'tcp', port: 8999 },
        { type: 'file', path: '/workspace/never' },
      ],
      wait: true,
      period_ms: 100,
      wait_timeout_ms: 500,
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.ready, false);
    assert.equal(res.body.timed_out, true);
    assert.ok(res.body.checks_performed >= 2, `${res.body.checks_performed} checks`);
    assert.ok(res.body.elapsed_ms >= 500 && res.body.elapsed_ms < 2000, `elapsed ${res.body.elapsed_ms}`);
    const [http, tcp, file] = res.body.probes;
    assert.match(http.last_failure, /HTTP 503/);
    assert.match(tcp.last_failure, /ECONNREFUSED/);
    assert.equal(file.last_failure, '/workspace/never does not exist');
    for (const text of ['HTTP 503', 'ECONNREFUSED', '/workspace/never does not exist']) assert.ok(res.body.message.includes(text), `${text} in ${res.body.message}`);
  });
});

describe('reach and streaming', () => {
  it('http and tcp probes reach a loopback-only server inside the instance that the host cannot reach', async () => {
    const port = 8300;
    await startService(port);
    const fromHost = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    assert.equal(fromHost, 'ECONNREFUSED', "the instance's loopback is not the host's");
    const res = await readiness({ probes: [{ type: 'http', port, path: '/redirect' }, { type: 'tcp', port }] });
    assert.equal(res.body.ready, true, res.text);
  });

  it('streams one probe event per round and a final timeout event with the status', async () => {
    const events = await readinessEvents({ probes: [{ type: 'tcp', port: 8999 }], wait: true, period_ms: 100, wait_timeout_ms: 350 });
    const rounds = events.filter((e) => e.type === 'probe') as ReadinessRoundEvent[];
    assert.ok(rounds.length >= 3 && rounds.length <= 4, `${rounds.length} rounds`);
    assert.deepEqual(rounds.map((r) => r.round), rounds.map((_, i) => i + 1));
    const last = events.at(-1) as any;
    assert.equal(last.type, 'timeout');
    assert.equal(last.timed_out, true);
    assert.equal(last.checks_performed, rounds.length);
    assert.match(last.probes[0].last_failure, /ECONNREFUSED/);
  });

  it('a one-shot check streams its round and a not_ready event', async () => {
    const events = await readinessEvents({ probes: [{ type: 'tcp', port: 8999 }] });
    assert.deepEqual(events.map((e) => e.type), ['probe', 'not_ready']);
  });

  it('a wait ends with an error event when the instance is deleted meanwhile', async () => {
    const other = (await server.request('POST', '/api/v1/instances', {})).body.id as string;
    const pending = readinessEvents({ probes: [{ type: 'tcp', port: 8999 }], wait: true, period_ms: 50, wait_timeout_ms: 20_000 }, other);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await server.request('DELETE', `/api/v1/instances/${other}`);
    const events = await pending;
    const last = events.at(-1) as any;
    assert.equal(last.type, 'error');
    assert.equal(last.code, 'INSTANCE_NOT_RUNNING');
    assert.ok(Date.now() - t0 < 5000);
  });
});

describe('bad requests', () => {
  const cases: Array<[string, unknown, number, string, string?]> = [
    ['port out of range', { probes: [{ type: 'tcp', port: 70000 }] }, 400, 'INVALID_PROBE', '/probes/0/port'],
    ['port 0', { probes: [{ type: 'http', port: 0 }] }, 400, 'INVALID_PROBE', '/probes/0/port'],
    ['unknown type', { probes: [{ type: 'grpc', port: 1 }] }, 400, 'INVALID_PROBE', '/probes/0/type'],
    ['missing port', { probes: [{ type: 'tcp' }] }, 400, 'INVALID_PROBE', '/probes/0/port'],
    ['a field of another type', { probes: [{ type: 'tcp', port: 1 }, { type: 'file', path: '/x', port: 1 }] }, 400, 'INVALID_PROBE', '/probes/1/port'],
    ['command and code', { probes: [{ type: 'command', command: ['true'], code: 'true' }] }, 400, 'INVALID_PROBE', '/probes/0/command'],
    ['relative file path', { probes: [{ type: 'file', path: 'ready' }] }, 400, 'INVALID_PROBE', '/probes/0/path'],
    ['http path without a slash', { probes: [{ type: 'http', port: 1, path: 'health' }] }, 400, 'INVALID_PROBE', '/probes/0/path'],
    ['invalid regex', { probes: [{ type: 'log', execution_id: 'exec-x', pattern: '(unclosed' }] }, 400, 'INVALID_PROBE', '/probes/0/pattern'],
    ['regex too long', { probes: [{ type: 'log', execution_id: 'exec-x', pattern: 'a'.repeat(513) }] }, 400, 'INVALID_PROBE', '/probes/0/pattern'],
    ['negative threshold', { probes: [{ type: 'tcp', port: 1 }], success_threshold: -1 }, 400, 'VALIDATION_FAILED', '/success_threshold'],
    ['zero failure threshold', { probes: [{ type: 'tcp', port: 1 }], failure_threshold: 0 }, 400, 'VALIDATION_FAILED', '/failure_threshold'],
    ['period under 50 ms', { probes: [{ type: 'tcp', port: 1 }], period_ms: 49 }, 400, 'VALIDATION_FAILED', '/period_ms'],
    ['negative initial delay', { probes: [{ type: 'tcp', port: 1 }], initial_delay_ms: -5 }, 400, 'VALIDATION_FAILED', '/initial_delay_ms'],
    ['no probes', { probes: [] }, 400, 'VALIDATION_FAILED', '/probes'],
    ['too many probes', { probes: Array.from({ length: 17 }, () => ({ type: 'tcp', port: 1 })) }, 400, 'VALIDATION_FAILED', '/probes'],
    ['missing probes', {}, 400, 'VALIDATION_FAILED'],
    ['unknown field', { probes: [{ type: 'tcp', port: 1, timeout: 5 }] }, 400, 'VALIDATION_FAILED'],
    ['port as a string', { probes: [{ type: 'tcp', port: '80' }] }, 400, 'VALIDATION_FAILED'],
  ];
  for (const [what, body, status, code, path] of cases) {
    it(`rejects ${what} with ${code}`, async () => {
      const error = assertError(await readiness(body), status, code);
      if (path !== undefined) assert.equal(error.details.errors[0].path, path);
      if (code === 'INVALID_PROBE') assert.match(error.message, /^probe \d+ \(\w+\): /);
    });
  }

  it('a streaming request with a bad config gets the plain error answer, not a stream', async () => {
    const res = await server.request('POST', `/api/v1/instances/${instanceId}/readiness`, { probes: [{ type: 'tcp', port: 0 }] }, { accept: 'text/event-stream' });
    assertError(res, 400, 'INVALID_PROBE');
  });

  it('unknown instance, stopped instance, unknown or foreign execution of a log probe', async () => {
    assertError(await readiness({ probes: [{ type: 'tcp', port: 1 }] }, 'inst-nope'), 404, 'INSTANCE_NOT_FOUND');
    const other = (await server.request('POST', '/api/v1/instances', {})).body.id as string;
    const foreign = (await exec('echo hi', other)).id;
    const error = assertError(await readiness({ probes: [{ type: 'log', execution_id: foreign, pattern: 'hi' }] }), 400, 'INVALID_PROBE');
    assert.equal(error.details.field, 'execution_id');
    assertError(await readiness({ probes: [{ type: 'log', execution_id: 'exec-unknown0000000', pattern: 'hi' }] }), 404, 'EXECUTION_NOT_FOUND');
    await server.request('DELETE', `/api/v1/instances/${other}`);
    assertError(await readiness({ probes: [{ type: 'tcp', port: 1 }] }, other), 409, 'INSTANCE_NOT_RUNNING');
  });
});
