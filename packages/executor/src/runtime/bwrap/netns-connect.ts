import { closeSync, openSync, readFileSync } from 'node:fs';
import { isIP, Socket } from 'node:net';
import { FaasError } from '@faas/protocol';
import { createSocket, setNetNs } from '../host-syscalls.ts';

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Errors of connect(2) that mean "nothing listens there", as opposed to a fault of ours. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** Opens a network namespace file (`/proc/<pid>/ns/net`) close-on-exec, so no child inherits it. */
export function openNetNs(path: string): number {
  return openSync(path, O_RDONLY | O_CLOEXEC);
}

export interface NetNsTarget {
  instanceId: string;
  /** Descriptor of the instance's network namespace. */
  nsFd: number;
  /** Host pid of a process in that namespace, to list the instance's own addresses. */
  pid: number;
}

/**
 * TCP connections into other network namespaces without a process per connection. A socket
 * belongs for life to the namespace it was created in, so the main thread steps into the
 * instance's namespace only for socket(2) and straight back: two setns(2) and a socket(2),
 * synchronous, so no other JavaScript (and no other socket of the server) is ever made inside.
 * The connect itself is Node's, on the pre-made descriptor, in the event loop as usual.
 */
export class NetNsConnector {
  private constructor(private readonly hostNs: number) {}

  /** Opens the host's own namespace, the one to return to: call it from the main thread. */
  static open(): NetNsConnector {
    // thread-self: the calling thread's namespace (the main thread's, where JavaScript runs).
    return new NetNsConnector(openNetNs('/proc/thread-self/ns/net'));
  }

  async connect(target: NetNsTarget, port: number, options: { host?: string; timeoutMs?: number } = {}): Promise<Socket> {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new FaasError('VALIDATION_FAILED', `port must be an integer in 1..65535, not ${String(port)}`, { errors: [{ path: 'port', message: 'must be an integer in 1..65535' }] });
    }
    const host = resolveHost(target, options.host ?? '127.0.0.1');
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new FaasError('VALIDATION_FAILED', `timeoutMs must be a positive number, not ${String(timeoutMs)}`, { errors: [{ path: 'timeoutMs', message: 'must be positive' }] });
    }
    const fd = this.socketIn(target.nsFd, isIP(host) === 6 ? AF_INET6 : AF_INET);
    let socket: Socket;
    try {
      socket = new Socket({ fd });
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const details = { instance_id: target.instanceId, host, port };
    return new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new FaasError('CONNECT_TIMEOUT', `no connection to ${host}:${port} in instance ${target.instanceId} within ${timeoutMs} ms`, { ...details, timeout_ms: timeoutMs }));
      }, timeoutMs);
      const onError = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        if (UNREACHABLE.has(err.code ?? '')) reject(new FaasError('PORT_UNREACHABLE', `nothing accepts connections at ${host}:${port} in instance ${target.instanceId} (${err.code})`, details));
        else reject(new FaasError('RUNTIME_ERROR', `connecting to ${host}:${port} in instance ${target.instanceId} failed: ${err.message}`, details, { cause: err }));
      };
      socket.once('error', onError);
      // Node connects the descriptor it was given (libuv creates a socket only when it has
      // none); an IP address needs no lookup, so the connect runs before the loop polls it.
      socket.connect({ port, host }, () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(socket);
      });
    });
  }

  close(): void {
    closeSync(this.hostNs);
  }

  /** socket(2) inside the namespace behind `nsFd`; the calling thread is back home when it returns or throws. */
  private socketIn(nsFd: number, family: number): number {
    setNetNs(nsFd);
    try {
      return createSocket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
    } finally {
      try {
        setNetNs(this.hostNs);
      } catch (err) {
        // Cannot happen with a valid descriptor of a namespace we left a moment ago. If it did,
        // every later socket of the server would be made inside the instance: stopping beats that.
        process.stderr.write(`fatal: cannot return to the host network namespace: ${(err as Error).message}\n`);
        process.abort();
      }
    }
  }
}

/**
 * The address to connect to: a loopback address (the instance's own loopback), `localhost`, or
 * an address assigned inside the instance. Anything else is refused: connect() reaches into
 * an instance, it is not a way to reach other hosts from its network.
 */
function resolveHost(target: NetNsTarget, host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  const family = isIP(host);
  if (family === 4 && host.startsWith('127.')) return host;
  if (family === 6 && (host === '::1' || /^::ffff:127\./i.test(host))) return host;
  if (family !== 0 && instanceAddresses(target.pid).has(family === 6 ? normalizeV6(host) : host)) return host;
  throw new FaasError('VALIDATION_FAILED', `host must be a loopback address or an address of the instance, not ${JSON.stringify(host)}`, { errors: [{ path: 'host', message: 'must be a loopback address or an address of the instance' }] });
}

/** Addresses assigned to interfaces in the namespace of `pid` (from its /proc/<pid>/net view). */
function instanceAddresses(pid: number): Set<string> {
  const out = new Set<string>();
  try {
    // fib_trie lists "|-- a.b.c.d" followed by "/32 host LOCAL" for each local IPv4 address.
    const lines = readFileSync(`/proc/${pid}/net/fib_trie`, 'utf8').split('\n');
    lines.forEach((line, i) => {
      const m = /\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
      if (m && /host LOCAL/.test(lines[i + 1] ?? '')) out.add(m[1]!);
    });
  } catch {
    // no IPv4 in that namespace
  }
  try {
    for (const line of readFileSync(`/proc/${pid}/net/if_inet6`, 'utf8').split('\n')) {
      const hex = line.split(' ')[0];
      if (hex?.length === 32) out.add(normalizeV6(hex.match(/.{4}/g)!.join(':')));
    }
  } catch {
    // no IPv6 in that namespace
  }
  return out;
}

function normalizeV6(address: string): string {
  // Expand "::" and drop leading zeros, so both spellings compare equal.
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}
