import type { Socket } from 'node:net';
import { FaasError } from '@faas/protocol';
import type { Logger } from 'pino';
import type { AcceptConnection, RejectConnection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import type { InstanceAccess } from './instance-access.ts';

/** A forwarded connection that is not established in this time is refused (ssh prints "open failed"). */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Local port forwarding (`ssh -L 9000:127.0.0.1:8000`): each `direct-tcpip` channel becomes a
 * TCP connection opened by the runtime inside the instance's network namespace, so
 * "127.0.0.1" is the instance's own loopback, never the host's. The runtime decides which
 * destinations are reachable (loopback, the instance's own addresses) and refuses the rest;
 * a refusal becomes a channel open failure, never an accepted channel that closes at once.
 *
 * The connection is opened before the channel is accepted, so a client sees a failure as a
 * failure. Remote forwarding (`tcpip-forward`) is not offered: ssh2 refuses global requests
 * nobody listens for.
 */
export async function handleDirectTcpip(
  accept: AcceptConnection<ServerChannel>,
  reject: RejectConnection,
  info: TcpipRequestInfo,
  options: { instanceId: string; access: InstanceAccess; logger: Logger },
): Promise<void> {
  const { instanceId, access, logger } = options;
  const host = destinationHost(info.destIP);
  let socket: Socket;
  try {
    socket = await access.connect(instanceId, info.destPort, { host, timeoutMs: CONNECT_TIMEOUT_MS });
  } catch (err) {
    const code = err instanceof FaasError ? err.code : 'INTERNAL_ERROR';
    const log = err instanceof FaasError ? logger.info.bind(logger) : logger.warn.bind(logger);
    log({ err, code, instance: instanceId, host: info.destIP, port: info.destPort }, 'ssh forwarding refused');
    reject();
    return;
  }
  let channel: ServerChannel;
  try {
    channel = accept();
  } catch (err) {
    socket.destroy();
    throw err;
  }
  await pipeBothWays(channel, socket, logger);
}

/**
 * The name a client gives (`-L 9000:localhost:8000` sends "localhost") as an address the
 * runtime accepts: resolving names inside the instance is not ours to do, but "localhost"
 * means its loopback.
 */
function destinationHost(dest: string): string {
  return dest === 'localhost' || dest === 'ip6-localhost' ? '127.0.0.1' : dest;
}

/** Bytes both ways with backpressure; either side's end or error ends both. */
function pipeBothWays(channel: ServerChannel, socket: Socket, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      socket.destroy();
      channel.end();
      resolve();
    };
    socket.on('error', (err) => {
      logger.debug({ err }, 'forwarded connection error');
      finish();
    });
    channel.on('error', (err: Error) => {
      logger.debug({ err }, 'forwarding channel error');
      finish();
    });
    // Half-close both ways (HTTP clients send their request and then EOF); close when both are done.
    socket.pipe(channel);
    channel.pipe(socket);
    socket.once('close', finish);
    channel.once('close', finish);
  });
}
