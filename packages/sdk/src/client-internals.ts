/**
 * The transport behind each client, for SDK modules that are not part of the client class
 * (the Node-only `@faas/sdk/sync`), without making it public API.
 */
import type { HttpTransport } from './http-transport.ts';

const transports = new WeakMap<object, HttpTransport>();

export function registerTransport(client: object, transport: HttpTransport): void {
  transports.set(client, transport);
}

/** The transport of a FaaSPlatformClient; throws for anything else. */
export function transportOf(client: object): HttpTransport {
  const transport = transports.get(client);
  if (transport === undefined) throw new TypeError('expected a FaaSPlatformClient');
  return transport;
}
