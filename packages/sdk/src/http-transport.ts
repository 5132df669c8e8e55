/**
 * The SDK's one way to talk to a server: JSON over fetch, with auth, per-request timeouts,
 * error bodies turned into FaasError, and retries for requests that are safe to repeat.
 *
 * Browser-safe on purpose: global fetch, AbortController, ReadableStream, nothing from Node.
 */
import { ErrorCode, FaasError, isFaasError } from '@faas/protocol/errors';
import { errorFromFailedResponse } from './error-mapping.ts';
import { backoffDelay, isRetryableFailure, sleep, type BackoffOptions } from './retry-policy.ts';

/**
 * Settings of a transport; the client fills them from its own options.
 *
 * @example
 * const transport = new HttpTransport({ baseUrl: 'http://127.0.0.1:8080', apiKey: 'k', timeoutMs: 30_000, maxRetries: 3 });
 */
export interface HttpTransportOptions {
  /** Server base URL; a path prefix (for a reverse proxy) is kept. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  /** Client timeout per request in ms. @default 30000 */
  timeoutMs?: number;
  /** Retries after the first attempt, for idempotent requests only. @default 3 */
  maxRetries?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Backoff between retries. @default { baseDelayMs: 100, maxDelayMs: 2000 } */
  backoff?: BackoffOptions;
}

/**
 * One request. `timeoutMs: null` means no client timeout (for calls that wait for an
 * execution whose length is unknown).
 *
 * @example
 * await transport.request({ method: 'GET', path: '/api/v1/instances', query: { limit: 5 } });
 */
export interface RequestOptions {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path below the base URL, starting with "/". */
  path: string;
  query?: Record<string, string | number | undefined>;
  /** Serialised as JSON. */
  body?: unknown;
  /** Whether repeating the request is harmless. @default true for GET and DELETE, false for POST */
  idempotent?: boolean;
  /** @default the transport's timeoutMs */
  timeoutMs?: number | null;
  /** Retries for this request, when it is idempotent. @default the transport's maxRetries */
  maxRetries?: number;
  signal?: AbortSignal;
}

/**
 * An open streaming response. The client timeout covered only the wait for its headers;
 * the body is read for as long as the server sends, until `close()` or the signal aborts.
 *
 * @example
 * const stream = await transport.openStream({ method: 'GET', path: `/api/v1/executions/${id}/events` });
 * try { for await (const m of parseSseStream(stream.body)) console.log(m); } finally { stream.close(); }
 */
export interface OpenStream {
  body: ReadableStream<Uint8Array>;
  /** Releases the connection and the abort listener. Safe to call twice. */
  close(): void;
}

/**
 * A request whose body and answer the caller handles as bytes (file sync content). No
 * retries: a body stream can be sent once.
 *
 * @example
 * const response = await transport.raw({ method: 'GET', path: `/api/v1/instances/${id}/sync/${syncId}/content` });
 */
export interface RawRequestOptions {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  /** A fetch body; in Node also an async iterable of bytes (sent with `duplex: 'half'`). */
  body?: unknown;
  signal?: AbortSignal;
  /** Client timeout until the response headers arrive. @default null (none) */
  timeoutMs?: number | null;
}

/** json: read the whole body under the timeout; stream: hand the body over once headers came. */
type ResponseMode = 'json' | 'stream';

/**
 * Client timeout per request, in ms.
 *
 * @default 30000
 * @example
 * new FaaSPlatformClient({ timeout: DEFAULT_TIMEOUT_MS * 2 });
 */
export const DEFAULT_TIMEOUT_MS = 30_000;
/**
 * Retries of an idempotent request after a retryable failure.
 *
 * @default 3
 * @example
 * new FaaSPlatformClient({ maxRetries: 0 }); // fail fast instead
 */
export const DEFAULT_MAX_RETRIES = 3;

export class HttpTransport {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #fetch: typeof fetch;
  readonly #backoff: BackoffOptions;

  constructor(options: HttpTransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    // Bound so a host object's fetch is not called with the wrong `this` (browsers throw).
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#backoff = options.backoff ?? {};
  }

  /** The authorization header this transport sends (for Node-only modules that speak HTTP themselves). */
  authHeaders(): Record<string, string> {
    return this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {};
  }

  /** Retries that may follow a failed idempotent request. */
  get maxRetries(): number {
    return this.#maxRetries;
  }

  /** The default client timeout in ms. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Backoff delay before retry `attempt` (0-based), with this transport's tuning. */
  backoffDelay(attempt: number): number {
    return backoffDelay(attempt, this.#backoff);
  }

  /** Sends a JSON request and parses the JSON answer; throws FaasError on failure. */
  async request<T>(options: RequestOptions): Promise<T> {
    return this.#withRetries(options, async (response) => {
      const text = await response.text();
      if (text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch (cause) {
        throw new FaasError(ErrorCode.INTERNAL_ERROR, `the server answered ${options.method} ${options.path} with a body that is not JSON`, { body: text.slice(0, 500) }, { cause, status: response.status });
      }
    }, 'json');
  }

  /** Opens a streaming GET (SSE); the client timeout applies until the headers arrive. */
  async openStream(options: RequestOptions): Promise<OpenStream> {
    return this.#withRetries({ ...options, idempotent: true }, async (response, release) => {
      if (!response.body) throw new FaasError(ErrorCode.CONNECTION_FAILED, 'the server sent no stream body');
      return { body: response.body, close: release };
    }, 'stream');
  }

  /**
   * Sends one raw request and resolves with the response once its headers arrived (a non-2xx
   * answer throws FaasError); the caller reads (or cancels) the body.
   */
  async raw(options: RawRequestOptions): Promise<Response> {
    const { signal } = options;
    if (signal?.aborted) throw signal.reason;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutMs = options.timeoutMs ?? null;
    let timedOut = false;
    const timer =
      timeoutMs === null
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, timeoutMs);
    const describe = `${options.method} ${options.path}`;
    try {
      const headers: Record<string, string> = { ...options.headers };
      if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
      const init: RequestInit & { duplex?: 'half' } = { method: options.method, headers, signal: controller.signal };
      if (options.body !== undefined) {
        init.body = options.body as BodyInit;
        init.duplex = 'half';
      }
      const response = await this.#fetch(this.#url(options), init);
      clearTimeout(timer);
      if (!response.ok) {
        throw await errorFromFailedResponse(response);
      }
      return response;
    } catch (error) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (timedOut) throw new FaasError(ErrorCode.CLIENT_TIMEOUT, `${describe} got no answer within ${timeoutMs} ms`, { timeout_ms: timeoutMs }, { cause: error });
      if (signal?.aborted) throw signal.reason;
      if (isFaasError(error)) throw error;
      throw new FaasError(ErrorCode.CONNECTION_FAILED, `${describe} to ${this.baseUrl} failed: ${describeCause(error)}`, {}, { cause: error });
    }
  }

  async #withRetries<T>(options: RequestOptions, consume: (response: Response, release: () => void) => Promise<T>, mode: ResponseMode): Promise<T> {
    const idempotent = options.idempotent ?? options.method !== 'POST';
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#attempt(options, consume, mode);
      } catch (error) {
        if (!idempotent || attempt >= (options.maxRetries ?? this.#maxRetries) || !isRetryableFailure(error) || options.signal?.aborted) throw error;
        await sleep(this.backoffDelay(attempt), options.signal);
      }
    }
  }

  async #attempt<T>(options: RequestOptions, consume: (response: Response, release: () => void) => Promise<T>, mode: ResponseMode): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) throw signal.reason;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutMs = options.timeoutMs === undefined ? this.#timeoutMs : options.timeoutMs;
    let timedOut = false;
    const timer =
      timeoutMs === null
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, timeoutMs);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      controller.abort();
    };
    const describe = `${options.method} ${options.path}`;
    try {
      const response = await this.#fetch(this.#url(options), {
        method: options.method,
        headers: this.#headers(options, mode === 'json' ? 'application/json' : 'text/event-stream'),
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: controller.signal,
      });
      if (!response.ok) {
        throw await errorFromFailedResponse(response);
      }
      // A stream may run for hours: the timeout guarded only the wait for its headers.
      if (mode === 'stream') clearTimeout(timer);
      const result = await consume(response, release);
      if (mode === 'json') release();
      return result;
    } catch (error) {
      release();
      if (timedOut) {
        throw new FaasError(ErrorCode.CLIENT_TIMEOUT, `${describe} got no answer within ${timeoutMs} ms`, { timeout_ms: timeoutMs }, { cause: error });
      }
      if (signal?.aborted) throw signal.reason;
      if (isFaasError(error)) throw error;
      throw new FaasError(ErrorCode.CONNECTION_FAILED, `${describe} to ${this.baseUrl} failed: ${describeCause(error)}`, {}, { cause: error });
    }
  }

  #url(options: RequestOptions): string {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) query.set(key, String(value));
    }
    const search = query.toString();
    return `${this.baseUrl}${options.path}${search ? `?${search}` : ''}`;
  }

  #headers(options: RequestOptions, accept: string): Record<string, string> {
    const headers: Record<string, string> = { accept };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    return headers;
  }
}

/** fetch failures hide the useful part (ECONNREFUSED, ECONNRESET) in `cause`. */
function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${error.message} (${code})` : `${error.message} (${cause.message})`;
  }
  return error.message;
}
