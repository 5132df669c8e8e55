import { Type, type Static } from 'typebox';
import { IsoTime } from './common.ts';

/** Characters an access token may use: URL- and cookie-safe, so it travels unescaped in all three places. */
export const PORT_TOKEN_PATTERN = '^[A-Za-z0-9._~-]{16,256}$';

/**
 * `POST /api/v1/instances/:id/ports`: exposes a port of the instance at `/p/<instance>/<port>/`,
 * reachable without the API key. See docs/ports.md.
 */
export const ExposePortRequest = Type.Object(
  {
    port: Type.Integer({ minimum: 1, maximum: 65_535, description: 'TCP port inside the instance (its own loopback).' }),
    token: Type.Optional(
      Type.Union([Type.Boolean(), Type.String({ pattern: PORT_TOKEN_PATTERN })], {
        description: 'true: the server generates an access token (shown once, in this answer); a string: that token (16-256 of A-Z a-z 0-9 . _ ~ -); false or absent: none.',
      }),
    ),
    public: Type.Optional(
      Type.Boolean({
        description: 'Reachable with no credential at all. Defaults to the opposite of `token`; `public: false` without a token generates one; `public: true` with a token is refused.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ExposePortRequest = Static<typeof ExposePortRequest>;

export const ExposedPort = Type.Object({
  instance_id: Type.String(),
  port: Type.Integer(),
  url: Type.String({ description: 'Absolute URL of the exposed port, built from the Host the request came to; ends with "/".' }),
  token_required: Type.Boolean({ description: 'Requests must carry the access token (header, query parameter or cookie).' }),
  created_at: IsoTime,
  token: Type.Optional(Type.String({ description: 'The access token: only in the answer that created the exposure. The server keeps only its SHA-256.' })),
});
export type ExposedPort = Static<typeof ExposedPort>;

export const ExposedPortList = Type.Object({ ports: Type.Array(ExposedPort) });
export type ExposedPortList = Static<typeof ExposedPortList>;

/** Header carrying a port's access token. */
export const PORT_TOKEN_HEADER = 'x-faas-port-token';
/** Query parameter carrying a port's access token (for links and WebSocket URLs); the proxy turns it into a cookie. */
export const PORT_TOKEN_QUERY = 'faas_token';
/** Cookie the proxy sets (HttpOnly, Path=/p/<instance>/<port>/) once a token came in the query. */
export const PORT_TOKEN_COOKIE = 'faas_port_token';
/**
 * Set on every error answer the port proxy makes itself, with the error code, so a client can
 * tell a faas 502 (PORT_UNREACHABLE) from a 502 of the service behind the port.
 */
export const PROXY_ERROR_HEADER = 'x-faas-error-code';
