import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ExposedPort, ExposedPortList, ExposePortRequest, FaasError, PORT_TOKEN_COOKIE, PORT_TOKEN_HEADER, PORT_TOKEN_QUERY, PROXY_ERROR_HEADER } from '@faas/protocol';
import type { ExposedPortRecord } from '../store/types.ts';
import { cookieValue, forwardHttp, forwardUpgrade, type ForwardOptions } from '../services/port-proxy.ts';
import { parsePortParam, type PresentedToken } from '../services/port-service.ts';
import { toFaasError } from './error-handler.ts';
import { typed, type RouteServices } from './route-context.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const PortParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }), port: Type.String({ maxLength: 16, description: 'TCP port, 1..65535.' }) });
const PROXY_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
/**
 * The path and query after `/api/v1/instances/<id>/ports/<port>` or `/p/<id>/<port>`, from the raw
 * URL (bytes as the client sent them). By segment count, not by spelling: the router matched the
 * route on the percent-decoded path (`/%70/...` is `/p/...`), and decoding never adds a "/".
 */
const API_PROXY_URL = /^(?:\/[^/?#]+){6}(\/[^?#]*)?(\?[^#]*)?/;
const PUBLIC_URL = /^(?:\/[^/?#]+){3}(\/[^?#]*)?(\?[^#]*)?/;

type ProxyRequest = FastifyRequest<{ Params: { id: string; port: string; '*'?: string } }>;

/**
 * Port access (docs/ports.md):
 * - `POST|GET /api/v1/instances/:id/ports`, `GET|DELETE .../ports/:port`: exposures.
 * - `* /api/v1/instances/:id/ports/:port/*`: proxy to any port of a running instance (API key).
 * - `* /p/:id/:port/*`: the public URL of an exposed port (no API key; its token if it has one).
 * Both proxies also forward WebSocket upgrades, as raw bytes after the service's 101.
 */
export function portRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    const { ports } = services;
    const wire = (request: FastifyRequest, r: ExposedPortRecord, token?: string): ExposedPort => ({
      instance_id: r.instanceId,
      port: r.port,
      url: `${request.protocol}://${request.host}${publicPrefix(r.instanceId, r.port)}`,
      token_required: r.tokenHash !== null,
      created_at: r.createdAt.toISOString(),
      ...(token !== undefined ? { token } : {}),
    });

    api.post(
      '/api/v1/instances/:id/ports',
      { schema: { tags: ['ports'], summary: 'Expose a port of the instance at a public URL, optionally behind an access token', params: IdParams, body: ExposePortRequest, response: { 201: ExposedPort } } },
      async (request, reply) => {
        const { port, token, public: isPublic } = request.body;
        const exposure = await ports.expose(request.params.id, port, { token, public: isPublic });
        return reply.status(201).send(wire(request, exposure.record, exposure.token));
      },
    );
    api.get('/api/v1/instances/:id/ports', { schema: { tags: ['ports'], summary: 'Exposed ports of the instance', params: IdParams, response: { 200: ExposedPortList } } }, async (request) => ({
      ports: (await ports.list(request.params.id)).map((r) => wire(request, r)),
    }));
    api.get('/api/v1/instances/:id/ports/:port', { schema: { tags: ['ports'], summary: 'One exposed port', params: PortParams, response: { 200: ExposedPort } } }, async (request) =>
      wire(request, await ports.get(request.params.id, parsePortParam(request.params.port))),
    );
    api.delete('/api/v1/instances/:id/ports/:port', { schema: { tags: ['ports'], summary: 'Un-expose a port: its public URL answers 404 from now on', params: PortParams } }, async (request, reply) => {
      await ports.unexpose(request.params.id, parsePortParam(request.params.port));
      return reply.status(204).send();
    });

    // The proxies read no body: a catch-all parser that consumes nothing leaves the request
    // stream to be piped, whatever its size and type (the body limit does not apply).
    await app.register(async (proxy) => {
      proxy.removeAllContentTypeParsers();
      proxy.addContentTypeParser('*', (_request, _payload, done) => done(null));
      // Every error answer of the proxy says it is ours (not the service's) in a header.
      proxy.addHook('onError', async (_request, reply, error) => {
        void reply.header(PROXY_ERROR_HEADER, toFaasError(error).code);
      });
      // @fastify/websocket routes upgrade requests through the router and would answer them
      // with its own WebSocket server; the proxy takes the raw socket first (hijack) and hands
      // the service the upgrade itself, so subprotocols, extensions and frames stay the service's.
      proxy.addHook('preHandler', async (request, reply) => {
        if (!(request as FastifyRequest & { ws?: boolean }).ws) return;
        const options = await resolve(request as ProxyRequest);
        const socket = await ports.connect(options.instanceId, options.port);
        reply.hijack();
        forwardUpgrade(request.raw, request.raw.socket, upgradeHead(request), socket, options);
      });

      /** Access checks (public route) and what to forward; throws the proxy's errors before anything is sent. */
      const resolve = async (request: ProxyRequest): Promise<ForwardOptions> => {
        // By the route matched, never by the URL's spelling: the router decodes percent-escapes,
        // so `/%70/<id>/<port>/` is the public route while its URL does not start with "/p/".
        const isPublic = request.routeOptions.url?.startsWith('/p/') === true;
        const { id } = request.params;
        const port = parsePortParam(request.params.port);
        const match = (isPublic ? PUBLIC_URL : API_PROXY_URL).exec(request.raw.url ?? '');
        let query = match?.[2] ?? '';
        const extraResponseHeaders: Array<[string, string]> = [];
        if (isPublic) {
          const presented = presentedToken(request);
          await ports.authorizePublic(id, port, presented);
          query = withoutQueryParam(query, PORT_TOKEN_QUERY);
          // A token that came in a link becomes a cookie of this port's path, so the pages the
          // service serves (and their relative links) keep working without it in every URL.
          if (presented?.via === 'query') {
            const secure = request.protocol === 'https' ? '; Secure' : '';
            extraResponseHeaders.push(['Set-Cookie', `${PORT_TOKEN_COOKIE}=${presented.token}; Path=${publicPrefix(id, port)}; HttpOnly; SameSite=Lax${secure}`]);
          }
        }
        return {
          instanceId: id,
          port,
          path: `${match?.[1] ?? '/'}${query}`,
          // Our credentials never reach the service: the API key on the API route, the port
          // token (header and cookie) on the public one. The Authorization of a public request
          // is not ours and is passed on.
          dropHeaders: new Set(isPublic ? [PORT_TOKEN_HEADER] : ['authorization']),
          ...(isPublic ? { dropCookie: PORT_TOKEN_COOKIE } : {}),
          forwardedPrefix: isPublic ? publicPrefix(id, port).slice(0, -1) : `/api/v1/instances/${id}/ports/${port}`,
          protocol: request.protocol,
          timeoutMs: services.portProxyTimeoutMs,
          extraResponseHeaders,
        };
      };

      const handler = async (request: ProxyRequest, reply: FastifyReply): Promise<void> => {
        const options = await resolve(request);
        const agent = await ports.agent(options.instanceId, options.port);
        reply.hijack();
        forwardHttp(request.raw, reply.raw, { agent, connect: () => ports.connect(options.instanceId, options.port) }, options);
      };
      const schema = (summary: string) => ({ tags: ['ports'], summary });
      proxy.route({ method: PROXY_METHODS, url: '/api/v1/instances/:id/ports/:port/*', exposeHeadRoute: false, schema: schema('Proxy to a port inside the instance (any method; WebSocket upgrades too)'), handler });
      proxy.route({ method: PROXY_METHODS, url: '/p/:id/:port/*', exposeHeadRoute: false, schema: schema('Public URL of an exposed port (no API key; its access token if it has one)'), handler });
      // Like a directory: relative links of the service's pages resolve below the prefix.
      proxy.route({
        method: PROXY_METHODS,
        url: '/p/:id/:port',
        exposeHeadRoute: false,
        schema: { ...schema('Redirects to the URL with a trailing slash'), hide: true },
        handler: async (request: ProxyRequest, reply: FastifyReply) => {
          const raw = request.raw.url ?? '';
          const q = raw.indexOf('?');
          return reply.redirect(q === -1 ? `${raw}/` : `${raw.slice(0, q)}/${raw.slice(q)}`, 308);
        },
      });
    });
  };
}

/** `/p/<id>/<port>/`: the public path of an exposed port. */
function publicPrefix(instanceId: string, port: number): string {
  return `/p/${encodeURIComponent(instanceId)}/${port}/`;
}

/** The port token a public request carries: header first, then the query parameter, then the cookie. */
function presentedToken(request: FastifyRequest): PresentedToken {
  const header = request.headers[PORT_TOKEN_HEADER];
  if (typeof header === 'string' && header !== '') return { token: header, via: 'header' };
  const raw = request.raw.url ?? '';
  const q = raw.indexOf('?');
  if (q !== -1) {
    for (const part of raw.slice(q + 1).split('&')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq) === PORT_TOKEN_QUERY) {
        try {
          return { token: decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' ')), via: 'query' };
        } catch {
          throw new FaasError('PORT_TOKEN_INVALID', 'the access token in the query is not valid percent-encoding');
        }
      }
    }
  }
  const cookie = cookieValue(request.headers.cookie, PORT_TOKEN_COOKIE);
  if (cookie !== undefined && cookie !== '') return { token: cookie, via: 'cookie' };
  return undefined;
}

/** `?a=1&faas_token=x&b=2` without `faas_token`, other parameters byte for byte as sent ("" when none is left). */
function withoutQueryParam(query: string, name: string): string {
  if (query === '') return '';
  const kept = query
    .slice(1)
    .split('&')
    .filter((part) => part.split('=', 1)[0] !== name);
  return kept.length === 0 || (kept.length === 1 && kept[0] === '') ? '' : `?${kept.join('&')}`;
}

/**
 * Bytes that arrived after the upgrade request's headers (usually none: clients wait for the
 * 101). @fastify/websocket keeps them on the raw request under a private symbol; found by its
 * description, and empty if a later version keeps them elsewhere.
 */
function upgradeHead(request: FastifyRequest): Buffer {
  const raw = request.raw as unknown as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(raw).find((s) => s.description === 'ws-head');
  const head = key === undefined ? undefined : raw[key];
  return Buffer.isBuffer(head) ? head : Buffer.alloc(0);
}
