import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FaasError, PROXY_ERROR_HEADER } from '@faas/protocol';

/**
 * The byte-level half of port access: forwards one HTTP request (over a pooled connection to a
 * port inside an instance), or one upgraded connection such as a WebSocket (over a connection of
 * its own). Who may reach which port is decided before (PortService); this only moves bytes
 * faithfully.
 *
 * Bodies stream both ways with back-pressure (pipe), never buffered. Framing is per hop: the
 * client's Content-Length is passed on, a chunked body is re-chunked; the answer keeps the
 * service's Content-Length, or is chunked by Node when it had none.
 */

/**
 * Hop-by-hop headers (RFC 9110 7.6.1) and the ones the proxy sets itself: never passed on.
 * `expect`: Node answers `100-continue` to the client itself.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);
const SET_BY_PROXY = new Set(['host', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-prefix']);

export interface ForwardOptions {
  instanceId: string;
  port: number;
  /** Path and query to ask the service for (starts with "/"). */
  path: string;
  /** Lower-case request headers to drop besides the hop-by-hop ones (our credentials). */
  dropHeaders: ReadonlySet<string>;
  /** A cookie (by name) to drop from the Cookie header: the port token must not reach the service. */
  dropCookie?: string;
  /** The URL prefix the service is reached under, passed as X-Forwarded-Prefix so it can build links. */
  forwardedPrefix: string;
  /** `http` or `https`, as the client reached the server. */
  protocol: string;
  /** No response headers within this long: 504 UPSTREAM_TIMEOUT. Bodies stream without limit. */
  timeoutMs: number;
  /** Headers added to the answer (the port-token cookie). */
  extraResponseHeaders?: ReadonlyArray<readonly [string, string]>;
}

/** Where proxied HTTP requests go: a keep-alive pool, and fresh connections for a retry. */
export interface Upstream {
  agent: Agent;
  /** A new connection, not from the pool. */
  connect: () => Promise<Socket>;
}

/**
 * Errors of a pooled connection the service closed just as it was reused (the keep-alive race):
 * an idempotent request (RFC 9110 9.2.2) without a body that met one is sent once more on a
 * fresh connection, as browsers do. Others fail (UPSTREAM_ERROR): the service may have acted.
 */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** Forwards `req` to the service and streams the answer into `res`. The client going away aborts the upstream request. */
export function forwardHttp(req: IncomingMessage, res: ServerResponse, upstream: Upstream, options: ForwardOptions): void {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of requestHeaders(req, options)) {
    const existing = headers[name];
    headers[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [String(existing)]), value];
  }
  const chunked = req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined;
  // A chunked body stays chunked: Node re-chunks what its parser de-chunked.
  if (chunked) headers['transfer-encoding'] = 'chunked';
  const bodyless = !chunked && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0');
  const retryable = bodyless && IDEMPOTENT.has(req.method ?? '');
  const details = { instance_id: options.instanceId, port: options.port };
  let answered = false;
  let upstreamRes: IncomingMessage | undefined;
  let upstreamReq: ClientRequest;
  const timer = setTimeout(() => {
    fail(new FaasError('UPSTREAM_TIMEOUT', `the service at port ${options.port} of instance ${options.instanceId} sent no response within ${options.timeoutMs} ms`, { ...details, timeout_ms: options.timeoutMs }));
  }, options.timeoutMs);
  const fail = (error: FaasError): void => {
    clearTimeout(timer);
    if (answered) return;
    answered = true;
    req.unpipe(upstreamReq);
    upstreamReq.destroy();
    writeProxyError(res, error);
  };
  const send = (fresh: boolean): void => {
    const base = { host: '127.0.0.1', port: options.port, method: req.method, path: options.path, headers, setHost: false };
    upstreamReq = fresh
      ? httpRequest({
          ...base,
          createConnection: (_o, callback) => {
            upstream.connect().then(
              (socket) => callback(null, socket),
              (err: Error) => callback(err, undefined as unknown as Socket),
            );
            return undefined;
          },
        })
      : httpRequest({ ...base, agent: upstream.agent });
    upstreamReq.on('socket', (socket) => (socket as Socket).setNoDelay?.(true));
    upstreamReq.on('response', (response) => {
      clearTimeout(timer);
      if (answered) {
        response.destroy();
        return;
      }
      answered = true;
      upstreamRes = response;
      const out = responseHeaders(response);
      for (const [name, value] of options.extraResponseHeaders ?? []) out.push(name, value);
      try {
        res.writeHead(response.statusCode ?? 502, response.statusMessage, out);
      } catch (err) {
        // A header value Node refuses to send (it accepted it when parsing, so rare).
        response.destroy();
        answered = false;
        fail(new FaasError('UPSTREAM_ERROR', `the service at port ${options.port} of instance ${options.instanceId} answered with a header that cannot be passed on: ${(err as Error).message}`, { ...details, reason: 'invalid_header' }));
        return;
      }
      // The service stopping mid-body: the client must see a broken answer, not a short one.
      response.on('error', () => res.destroy());
      response.on('aborted', () => res.destroy());
      response.pipe(res);
    });
    upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) {
        // A service may answer early (a 413) and close while the body is still coming: its
        // complete answer stands; only an unfinished one is broken off.
        req.unpipe(upstreamReq);
        if (upstreamRes?.complete !== true) res.destroy();
        return;
      }
      // No connection at all (nothing listens, connect timed out): the runtime's own error.
      if (err instanceof FaasError) {
        fail(err);
        return;
      }
      if (!fresh && retryable && upstreamReq.reusedSocket && STALE_CONNECTION.has(err.code ?? '') && !res.destroyed) {
        send(true);
        return;
      }
      fail(new FaasError('UPSTREAM_ERROR', `the service at port ${options.port} of instance ${options.instanceId} closed the connection before answering (${err.code ?? err.message})`, { ...details, reason: err.code ?? err.message }));
    });
    if (bodyless) upstreamReq.end();
    else req.pipe(upstreamReq);
  };
  // Fires after a complete answer too; only an unfinished one means the client went away.
  res.on('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) upstreamReq.destroy();
  });
  req.on('error', () => upstreamReq.destroy());
  send(false);
}

/**
 * Forwards an upgrade request (WebSocket) and then pipes raw bytes both ways: the service's own
 * 101 answer, its chosen subprotocol and extensions, and every frame pass through untouched.
 * Either side closing closes the other.
 */
export function forwardUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, upstream: Socket, options: ForwardOptions): void {
  upstream.setNoDelay(true);
  const lines = [`${req.method ?? 'GET'} ${options.path} HTTP/1.1`];
  for (const [name, value] of requestHeaders(req, options)) lines.push(`${name}: ${value}`);
  lines.push('Connection: Upgrade', `Upgrade: ${req.headers.upgrade ?? 'websocket'}`);
  upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (head.length > 0) upstream.write(head);
  const timer = setTimeout(() => {
    const error = new FaasError('UPSTREAM_TIMEOUT', `the service at port ${options.port} of instance ${options.instanceId} did not answer the upgrade within ${options.timeoutMs} ms`, {
      instance_id: options.instanceId,
      port: options.port,
      timeout_ms: options.timeoutMs,
    });
    upstream.destroy();
    const body = JSON.stringify(error.toBody());
    client.end(`HTTP/1.1 ${error.status} Gateway Timeout\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${PROXY_ERROR_HEADER}: ${error.code}\r\nconnection: close\r\n\r\n${body}`);
  }, options.timeoutMs);
  upstream.once('data', () => clearTimeout(timer));
  const end = (): void => {
    clearTimeout(timer);
    upstream.destroy();
    client.destroy();
  };
  upstream.on('error', end);
  upstream.on('close', end);
  client.on('error', end);
  client.on('close', end);
  upstream.pipe(client);
  client.pipe(upstream);
}

/** The answer of a proxy failure: the usual error body, plus the header that says it is ours. */
export function writeProxyError(res: ServerResponse, error: FaasError): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(error.toBody());
  // `connection: close`: the client may still be sending a body nobody will read.
  res.writeHead(error.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), [PROXY_ERROR_HEADER]: error.code, connection: 'close' });
  res.end(body);
}

/** The client's headers as the service gets them, in order, as [name, value] pairs. */
function requestHeaders(req: IncomingMessage, options: ForwardOptions): Array<[string, string]> {
  const listed = connectionTokens(req.headers.connection);
  const out: Array<[string, string]> = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || SET_BY_PROXY.has(lower) || listed.has(lower) || options.dropHeaders.has(lower)) continue;
    let value = raw[i + 1]!;
    if (lower === 'cookie' && options.dropCookie !== undefined) {
      value = withoutCookie(value, options.dropCookie);
      if (value === '') continue;
    }
    out.push([lower, value]);
  }
  // The service sees itself addressed as on its own loopback (dev servers check Host); where
  // the client really went travels in X-Forwarded-*. Client-sent X-Forwarded-* are dropped
  // above: nothing vouches for them.
  out.push(['host', `127.0.0.1:${options.port}`]);
  out.push(['x-forwarded-for', req.socket.remoteAddress ?? '']);
  if (req.headers.host !== undefined) out.push(['x-forwarded-host', req.headers.host]);
  out.push(['x-forwarded-proto', options.protocol]);
  out.push(['x-forwarded-prefix', options.forwardedPrefix]);
  return out;
}

/** The service's answer headers minus hop-by-hop ones, as a flat [name, value, ...] list (duplicates such as Set-Cookie kept). */
function responseHeaders(res: IncomingMessage): string[] {
  const listed = connectionTokens(res.headers.connection);
  const out: string[] = [];
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    // The error-code header is the proxy's word: a service must not be able to forge it.
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || lower === PROXY_ERROR_HEADER) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Header names listed in a Connection header: hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(
    text
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** A Cookie header without the cookie `name` ("" when nothing is left). */
export function withoutCookie(header: string, name: string): string {
  return header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && part.split('=', 1)[0]!.trim() !== name)
    .join('; ');
}

/** The value of cookie `name` in a Cookie header, if present. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
