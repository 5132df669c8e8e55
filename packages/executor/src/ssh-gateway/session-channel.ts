import type { Logger } from 'pino';
import type { AcceptConnection, PseudoTtyInfo, RejectConnection, ServerChannel, Session } from 'ssh2';
import type { InteractiveProcess } from '../runtime/types.ts';
import { SshGatewayError, SshGatewayErrorCode } from './errors.ts';
import { acceptsClientEnv, MAX_CLIENT_ENV_VARS, SESSION_WORKING_DIR, sessionEnv, type ConnectionEnds, type InstanceAccess } from './instance-access.ts';
import { bridgeProcess, forwardSignal } from './process-bridge.ts';
import { sftpServerArgv } from './sftp-subsystem.ts';

export interface SessionOptions {
  instanceId: string;
  access: InstanceAccess;
  ends: ConnectionEnds;
  logger: Logger;
}

interface Pty {
  cols: number;
  rows: number;
  term: string;
}

/** Exit status reported when the process could not be started at all (as sshd's failed exec). */
const START_FAILED_STATUS = 1;
const DEFAULT_TERM = 'xterm';

/**
 * One SSH `session` channel: collects its `pty-req` and `env` requests, then runs exactly one
 * of shell, exec or subsystem as a process in the instance and bridges it to the channel.
 *
 * - shell: `/bin/bash -l` (the sandbox user's shell); under the requested PTY if any, so the
 *   terminal's line discipline turns Ctrl-C into SIGINT for the foreground job.
 * - exec: `/bin/bash -c COMMAND`, under a PTY only if the client asked for one (`ssh -t`),
 *   else with separate stdout and stderr. Legacy `scp -O` is this too (`scp -t`/`-f` runs
 *   inside the instance).
 * - subsystem sftp: the instance's own sftp-server over plain pipes (see sftp-subsystem.ts).
 *
 * Agent and X11 forwarding are not listened for, so ssh2 refuses them.
 */
export function handleSession(acceptSession: AcceptConnection<Session>, options: SessionOptions): Promise<void> {
  const session = acceptSession();
  const { logger } = options;
  let pty: Pty | undefined;
  const clientEnv: Record<string, string> = {};
  let proc: InteractiveProcess | undefined;
  let started = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  // The session may be closed by the client before it ever asks for a process.
  session.once('close', () => {
    if (!started) resolveDone();
  });

  session.on('pty', (accept: (() => void) | undefined, reject: RejectConnection | undefined, info: PseudoTtyInfo) => {
    if (started) return reject?.();
    pty = { cols: dimension(info.cols, 80), rows: dimension(info.rows, 24), term: termName(info.term) };
    accept?.();
  });
  session.on('env', (accept: (() => void) | undefined, reject: RejectConnection | undefined, info: { key: string; val: string }) => {
    if (started || Object.keys(clientEnv).length >= MAX_CLIENT_ENV_VARS || !acceptsClientEnv(info.key, info.val)) return reject?.();
    clientEnv[info.key] = info.val;
    accept?.();
  });
  session.on('window-change', (accept: (() => void) | undefined, _reject: unknown, info: { cols: number; rows: number }) => {
    if (pty !== undefined) {
      pty = { ...pty, cols: dimension(info.cols, pty.cols), rows: dimension(info.rows, pty.rows) };
      proc?.resize(pty.cols, pty.rows);
    }
    accept?.();
  });
  session.on('signal', (accept: (() => void) | undefined, _reject: unknown, info: { name: string }) => {
    if (proc !== undefined) forwardSignal(proc, info.name, logger);
    accept?.();
  });

  const run = (accept: AcceptConnection<ServerChannel>, kind: string, argv: string[], withPty: boolean): void => {
    if (started) return;
    started = true;
    // Accept at once: ssh2 drops channel data that arrives before the channel object exists.
    // Undefined when the client closed the session in the meantime.
    const channel = accept() as ServerChannel | undefined;
    if (channel === undefined) return resolveDone();
    void start(channel, kind, argv, withPty ? pty : undefined)
      .catch((err: unknown) => logger.error({ err, instance: options.instanceId, kind }, 'ssh session failed'))
      .finally(resolveDone);
  };

  const start = async (channel: ServerChannel, kind: string, argv: string[], withPty: Pty | undefined): Promise<void> => {
    const { access, instanceId, ends } = options;
    try {
      const env = sessionEnv(instanceId, await access.instanceEnv(instanceId), ends, clientEnv, withPty?.term);
      proc = await access.execInteractive(instanceId, {
        argv,
        env,
        workingDir: SESSION_WORKING_DIR,
        ...(withPty !== undefined ? { pty: { cols: withPty.cols, rows: withPty.rows, term: withPty.term } } : {}),
      });
    } catch (err) {
      const failure = new SshGatewayError(SshGatewayErrorCode.CHANNEL_FAILED, `cannot start the ${kind} in instance ${instanceId}: ${(err as Error).message}`, { instance_id: instanceId, kind }, { cause: err });
      logger.warn({ err: failure, code: failure.code }, 'ssh session could not start');
      channel.stderr.write(`faas: ${failure.message}\r\n`);
      channel.exit(START_FAILED_STATUS);
      channel.end();
      return;
    }
    // A resize that came while the process was starting.
    if (withPty !== undefined && pty !== undefined && (pty.cols !== withPty.cols || pty.rows !== withPty.rows)) proc.resize(pty.cols, pty.rows);
    logger.debug({ instance: instanceId, kind, pty: withPty !== undefined }, 'ssh session started');
    await bridgeProcess(channel, proc, logger);
  };

  session.on('shell', (accept: AcceptConnection<ServerChannel>) => run(accept, 'shell', ['/bin/bash', '-l'], true));
  session.on('exec', (accept: AcceptConnection<ServerChannel>, _reject: RejectConnection, info: { command: string }) => run(accept, 'command', ['/bin/bash', '-c', info.command], true));
  session.on('subsystem', (accept: AcceptConnection<ServerChannel>, reject: RejectConnection, info: { name: string }) => {
    // sftp-server speaks a binary protocol: never under a PTY, whatever the client asked.
    if (info.name === 'sftp') run(accept, 'sftp subsystem', sftpServerArgv(), false);
    else reject();
  });
  return done;
}

/** A terminal dimension from the client: 0 means "unknown" in SSH; absurd values are clamped. */
function dimension(value: number, fallback: number): number {
  if (!Number.isInteger(value) || value <= 0) return fallback;
  return Math.min(value, 1000);
}

/** TERM goes into the environment: only a plausible terminal name, else a safe default. */
function termName(term: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/.test(term) ? term : DEFAULT_TERM;
}
