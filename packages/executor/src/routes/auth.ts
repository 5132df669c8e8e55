import { createHash, timingSafeEqual } from 'node:crypto';
import { FaasError } from '@faas/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Routes that browsers reach with EventSource/WebSocket, which cannot set headers. */
const TOKEN_IN_QUERY = /^\/api\/v1\/(executions\/[^/]+\/events|stream\/[^/]+)(\?|$)/;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Bearer-key check on every /api/v1 route. Compared in constant time. */
export function installAuth(app: FastifyInstance, apiKey: string): void {
  const expected = digest(apiKey);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (!underApi(request.url) && !underApi(request.routeOptions.url)) return;
    const key = presentedKey(request);
    if (key === undefined) throw new FaasError('UNAUTHORIZED', 'missing API key: send "Authorization: Bearer <key>"');
    if (!timingSafeEqual(digest(key), expected)) throw new FaasError('INVALID_API_KEY', 'the API key is not valid for this server');
  });
}

/**
 * Whether a path is the API's. Checked on the raw URL and on the route it matched: the router
 * decodes percent-escapes (`/%61pi/v1/instances` is routed to `/api/v1/instances`), so the raw
 * URL alone would let such a spelling reach every route without the key.
 */
function underApi(path: string | undefined): boolean {
  return path !== undefined && (path.startsWith('/api/v1/') || path === '/api/v1' || path.startsWith('/api/v1?'));
}

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  // Anything but "Bearer <key>" (Basic, empty) presents no key at all.
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (match) return match[1];
  if (TOKEN_IN_QUERY.test(request.url)) {
    const token = new URL(request.url, 'http://x').searchParams.get('access_token');
    if (token !== null) return token;
  }
  return undefined;
}

/** The URL with any access_token (API key) or faas_token (port access token) removed, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:access_token|faas_token)=)[^&]*/g, '$1[redacted]');
}
