import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ProbeSpec } from './probe-config.ts';
import { shorten, timed, type Probe, type ProbeContext } from './probe.ts';

type HttpSpec = Extract<ProbeSpec, { type: 'http' }>;

/** Most of a body read to look for `expected_body`; the rest is never read. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * `GET path` on host:port inside the instance, over a socket the runtime opened in the
 * instance's network namespace (so loopback-only services are reached, and nothing of the
 * host is). Passes on a status in `expected_status` (default 200-399) and, when asked, a body
 * containing `expected_body`. Redirects are not followed: a 3xx is the answer. The whole
 * exchange, connect included, must finish within the probe's timeout.
 */
export function httpProbe(spec: HttpSpec, ctx: ProbeContext): Probe {
  const target = `${spec.host}:${spec.port}${spec.path}`;
  const hostHeader = `${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`;
  return {
    type: 'http',
    timeoutMs: spec.timeoutMs,
    run: () =>
      timed('http', ctx.clock, async () => {
        const deadline = ctx.clock.monotonicMs() + spec.timeoutMs;
        const socket = await ctx.runtime.connect(ctx.instance.id, spec.port, { host: spec.host, timeoutMs: spec.timeoutMs });
        const left = Math.max(1, Math.round(deadline - ctx.clock.monotonicMs()));
        const { status, body } = await exchange(socket, spec, hostHeader, left, target);
        const statusOk = spec.expectedStatus === undefined ? status >= 200 && status <= 399 : spec.expectedStatus.includes(status);
        if (!statusOk) {
          const wanted = spec.expectedStatus === undefined ? '200-399' : spec.expectedStatus.join(', ');
          return { ok: false, message: shorten(`HTTP ${status} from ${target} (expected ${wanted})${body ? `: ${body}` : ''}`) };
        }
        if (spec.expectedBody !== undefined && !body.includes(spec.expectedBody)) {
          return { ok: false, message: shorten(`HTTP ${status} from ${target}, but the body lacks ${JSON.stringify(spec.expectedBody)}: ${body}`) };
        }
        return { ok: true, message: `HTTP ${status} from ${target}` };
      }),
  };
}

/** One request on `socket` (closed afterwards in every case); the body is read only when needed. */
function exchange(socket: Socket, spec: HttpSpec, hostHeader: string, timeoutMs: number, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, value?: { status: number; body: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      socket.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new Error(`${target}: no answer within ${timeoutMs} ms (probe timeout)`)), timeoutMs);
    const req = request({
      method: 'GET',
      path: spec.path,
      headers: { host: hostHeader, 'user-agent': 'faas-readiness/1', accept: '*/*', connection: 'close' },
      // No agent (none is used when createConnection is given and agent is left out; agent:
      // false would make a fresh one that ignores createConnection and dials the host).
      createConnection: () => socket,
    });
    req.on('error', (err) => finish(new Error(`${target}: ${err.message}`)));
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      // Reading the body matters only for expected_body, or to show a little of a failure.
      const wantsBody = spec.expectedBody !== undefined || !(spec.expectedStatus?.includes(status) ?? (status >= 200 && status <= 399));
      if (!wantsBody) return finish(undefined, { status, body: '' });
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= MAX_BODY_BYTES) finish(undefined, { status, body: Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8') });
      });
      res.on('end', () => finish(undefined, { status, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish(new Error(`${target}: ${err.message}`)));
    });
    req.end();
  });
}
