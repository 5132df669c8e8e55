/** A small client of the faas HTTP API for the benchmarks that drive a real server over loopback. */
import { now } from './stats.ts';

export interface WireInstance {
  id: string;
}

export class Api {
  constructor(
    readonly url: string,
    private readonly apiKey: string,
  ) {}

  /** One request; throws unless the status is `expect`. */
  async call<T>(method: string, path: string, body: unknown, expect: number): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (res.status !== expect) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  }

  async timed<T>(method: string, path: string, body: unknown, expect: number): Promise<{ ms: number; body: T }> {
    const t0 = now();
    const result = await this.call<T>(method, path, body, expect);
    return { ms: now() - t0, body: result };
  }

  /** Runs `code` (with `language`) in the instance; throws unless it exits 0. */
  async exec(instanceId: string, code: string, language: 'sh' | 'python' = 'sh'): Promise<string> {
    const r = await this.call<{ exit_code: number | null; stdout: string; stderr: string }>(
      'POST',
      `/api/v1/instances/${instanceId}/exec`,
      { code, language, timeout_ms: 600_000 },
      200,
    );
    if (r.exit_code !== 0) throw new Error(`exec in ${instanceId} exited ${r.exit_code}: ${r.stderr.trim().slice(0, 500)}`);
    return r.stdout;
  }

  deleteInstance(id: string): Promise<unknown> {
    return this.call('DELETE', `/api/v1/instances/${id}`, undefined, 200);
  }
}
