/**
 * Port access behind the flat client methods: exposures (JSON calls on the transport) and
 * `portFetch`, which speaks to the service behind a port and so returns its raw Response.
 */
import { ErrorCode, FaasError } from '@faas/protocol/errors';
import type { ExposedPort as WireExposedPort, ExposedPortList as WireExposedPortList } from '@faas/protocol/wire';
import { instancePath } from './api-paths.ts';
import { errorFromFailedResponse } from './error-mapping.ts';
import type { HttpTransport } from './http-transport.ts';
import type { ExposedPort, ExposePortOptions, PortFetchInit } from './port-types.ts';

/** Header the server sets on the errors its port proxy makes itself (never on the service's own answers). */
const PROXY_ERROR_HEADER = 'x-faas-error-code';
const PORT_TOKEN_HEADER = 'x-faas-port-token';

export class PortsApi {
  readonly #transport: HttpTransport;
  readonly #fetch: typeof fetch;

  constructor(transport: HttpTransport, fetchFn: typeof fetch | undefined) {
    this.#transport = transport;
    this.#fetch = fetchFn ?? globalThis.fetch.bind(globalThis);
  }

  /** Not retried on a dropped connection: a second attempt would answer PORT_ALREADY_EXPOSED and lose the token. */
  async expose(instanceId: string, port: number, options: ExposePortOptions): Promise<ExposedPort> {
    const body: Record<string, unknown> = { port };
    if (options.token !== undefined) body.token = options.token;
    if (options.public !== undefined) body.public = options.public;
    return fromWireExposedPort(await this.#transport.request<WireExposedPort>({ method: 'POST', path: `${instancePath(instanceId)}/ports`, body }));
  }

  async list(instanceId: string): Promise<ExposedPort[]> {
    const wire = await this.#transport.request<WireExposedPortList>({ method: 'GET', path: `${instancePath(instanceId)}/ports` });
    return wire.ports.map(fromWireExposedPort);
  }

  async unexpose(instanceId: string, port: number): Promise<void> {
    await this.#transport.request<void>({ method: 'DELETE', path: `${instancePath(instanceId)}/ports/${portSegment(port)}` });
  }

  async fetch(instanceId: string, port: number, path: string, init: PortFetchInit): Promise<Response> {
    if (!path.startsWith('/')) throw new FaasError(ErrorCode.VALIDATION_FAILED, `path must start with "/", got ${JSON.stringify(path)}`, { errors: [{ path: 'path', message: 'must start with "/"' }] });
    const { portToken, ...rest } = init;
    const headers = new Headers(rest.headers);
    let url: string;
    if (portToken === undefined) {
      url = `${this.#transport.baseUrl}${instancePath(instanceId)}/ports/${portSegment(port)}${path}`;
      for (const [name, value] of Object.entries(this.#transport.authHeaders())) headers.set(name, value);
    } else {
      url = `${this.#transport.baseUrl}/p/${encodeURIComponent(instanceId)}/${portSegment(port)}${path}`;
      if (portToken !== '') headers.set(PORT_TOKEN_HEADER, portToken);
    }
    const requestInit: RequestInit & { duplex?: 'half' } = { ...rest, headers };
    // A stream body (Node) must be sent half-duplex.
    if (rest.body !== undefined && rest.body !== null && typeof (rest.body as ReadableStream).getReader === 'function') requestInit.duplex = 'half';
    let response: Response;
    try {
      response = await this.#fetch(url, requestInit);
    } catch (error) {
      if (rest.signal?.aborted) throw rest.signal.reason;
      throw new FaasError(ErrorCode.CONNECTION_FAILED, `${rest.method ?? 'GET'} ${url} failed: ${(error as Error).message}`, {}, { cause: error });
    }
    // The server's own failures (no such instance, nothing listening, bad token) become
    // FaasErrors; any answer of the service, whatever its status, is the caller's to read.
    if (response.headers.has(PROXY_ERROR_HEADER)) {
      throw await errorFromFailedResponse(response);
    }
    return response;
  }
}

function portSegment(port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new FaasError(ErrorCode.VALIDATION_FAILED, `port must be an integer in 1..65535, not ${String(port)}`, { errors: [{ path: 'port', message: 'must be an integer in 1..65535' }] });
  return String(port);
}

export function fromWireExposedPort(w: WireExposedPort): ExposedPort {
  const out: ExposedPort = { instanceId: w.instance_id, port: w.port, url: w.url, tokenRequired: w.token_required, createdAt: new Date(w.created_at) };
  if (w.token !== undefined) out.token = w.token;
  return out;
}
