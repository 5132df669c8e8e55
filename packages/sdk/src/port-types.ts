/**
 * camelCase shapes of exposed ports (docs/ports.md).
 */

/**
 * Options of `exposePort`.
 *
 * @example
 * await client.exposePort(instance.id, 8000, { token: true }); // the server generates a token
 */
export interface ExposePortOptions {
  /**
   * `true`: the server generates an access token (returned once); a string: that token (16-256
   * of A-Z a-z 0-9 . _ ~ -); `false`: none.
   * @default false
   */
  token?: boolean | string;
  /**
   * Reachable with no credential at all. `public: false` without a token generates one; `true`
   * together with a token is refused.
   * @default the opposite of `token`
   */
  public?: boolean;
}

/**
 * A port of an instance exposed at a public URL.
 *
 * @example
 * const { url, token } = await client.exposePort(instance.id, 8000, { token: true });
 * await fetch(`${url}health`, { headers: { 'x-faas-port-token': token! } });
 */
export interface ExposedPort {
  instanceId: string;
  port: number;
  /** Absolute URL, ending with "/": `<server>/p/<instance>/<port>/`. */
  url: string;
  /** Requests must carry the access token (X-Faas-Port-Token header, `faas_token` query parameter, or the cookie the server sets). */
  tokenRequired: boolean;
  createdAt: Date;
  /** The access token: only in the answer of `exposePort`. The server keeps only its hash. */
  token?: string;
}

/**
 * `portFetch` options: fetch's own, plus how to reach the port.
 *
 * @example
 * await client.portFetch(id, 8000, '/api/items', { method: 'POST', body: JSON.stringify(item) });
 * await client.portFetch(id, 8000, '/', { portToken: exposed.token }); // the public URL, no API key
 */
export interface PortFetchInit extends RequestInit {
  /**
   * Go through the exposed port's public URL with this access token (no API key sent) instead
   * of the API-key proxy. Pass `''` for an exposed port that needs no token.
   * @default undefined: the API-key proxy, which reaches any port of a running instance
   */
  portToken?: string;
}
