import { once } from 'node:events';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ServerChannel } from 'ssh2';
import type { InteractiveProcess, ProcessExit } from '../runtime/types.ts';

/**
 * How long, once the process has exited, its output streams may take to reach end of file. A
 * process left in the background can hold them open forever; sshd would keep the session
 * open then, we end it (the runtime's wait() already waited for the output to go quiet).
 */
const OUTPUT_END_GRACE_MS = 1_000;
/** After the client went away: SIGHUP (what a closed terminal sends), then SIGKILL this much later. */
const HANGUP_GRACE_MS = 2_000;
/** Longest wait for buffered output to leave once the process is done (a client that stopped reading). */
const FLUSH_TIMEOUT_MS = 10_000;

/** Signals an SSH client may send (RFC 4254 §6.10 names, without "SIG"). */
const CLIENT_SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);

/**
 * Joins a session channel and a process in the instance: the client's data is the process's
 * stdin, its stdout and stderr go back as channel data and extended data, and its end becomes
 * `exit-status` (or `exit-signal`) followed by EOF and close, in that order (OpenSSH's exit
 * code is the one in exit-status, so it must be sent before the channel closes).
 *
 * Resolves when the channel is done with (process exited and reported, or the client left and
 * the process was ended).
 */
export async function bridgeProcess(channel: ServerChannel, proc: InteractiveProcess, logger: Logger): Promise<void> {
  let clientGone = false;
  const closed = once(channel, 'close').then(() => {
    clientGone = true;
  });
  // EPIPE when the process exits before reading all input is normal; stdin just stops.
  proc.stdin.on('error', () => {});
  channel.on('error', (err: Error) => logger.debug({ err }, 'ssh channel error'));
  channel.pipe(proc.stdin);
  proc.stdout.pipe(channel, { end: false });
  proc.stderr.pipe(channel.stderr, { end: false });

  // A runtime failure while waiting still ends the session, as a failed command (255, like ssh's own errors).
  const exited = proc.wait().catch((err: unknown): ProcessExit => {
    logger.warn({ err }, 'waiting for an ssh session process failed');
    return { exitCode: 255, signal: null, oomKilled: false, durationMs: 0 };
  });
  await Promise.race([exited, closed]);
  if (clientGone) {
    await endAbandoned(proc, exited, logger);
    return;
  }
  const exit = await exited;
  await Promise.race([Promise.all([ended(proc.stdout), ended(proc.stderr)]), delay(OUTPUT_END_GRACE_MS), closed]);
  proc.stdout.unpipe(channel);
  proc.stderr.unpipe(channel.stderr);
  if (!clientGone) await Promise.race([Promise.all([flushed(channel), flushed(channel.stderr)]), closed, delay(FLUSH_TIMEOUT_MS)]);
  if (!clientGone) {
    sendExit(channel, exit);
    channel.end();
  }
  // Streams a background process still holds are no longer ours.
  proc.stdout.resume();
  proc.stderr.resume();
}

/** The client sent `signal`: pass it to the process tree (unknown names are ignored, as by sshd). */
export function forwardSignal(proc: InteractiveProcess, name: string, logger: Logger): void {
  const bare = name.toUpperCase().replace(/^SIG/, '');
  if (!CLIENT_SIGNALS.has(bare)) return;
  proc.signal(`SIG${bare}` as NodeJS.Signals).catch((err: unknown) => logger.debug({ err }, 'signalling an ssh session process failed'));
}

function sendExit(channel: ServerChannel, exit: ProcessExit): void {
  if (exit.signal === null) {
    channel.exit(exit.exitCode ?? 255);
    return;
  }
  const bare = exit.signal.replace(/^SIG/, '');
  // SSH names only some signals; for the others report what a shell would: 128 + n.
  if (CLIENT_SIGNALS.has(bare)) channel.exit(bare, false, exit.oomKilled ? 'killed for passing the memory limit' : '');
  else channel.exit(128 + (constants.signals[exit.signal] ?? 0));
}

/** The client left (closed the channel or the connection): the process goes the way a hung-up terminal's does. */
async function endAbandoned(proc: InteractiveProcess, exited: Promise<ProcessExit>, logger: Logger): Promise<void> {
  proc.stdout.resume();
  proc.stderr.resume();
  const finished = exited.then(() => true);
  await proc.signal('SIGHUP').catch(() => {});
  if (await Promise.race([finished, delay(HANGUP_GRACE_MS).then(() => false)])) return;
  await proc.signal('SIGKILL').catch((err: unknown) => logger.warn({ err }, 'killing an abandoned ssh session process failed'));
  await exited.catch(() => {});
}

function ended(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

/** Resolves once everything written so far has been handed to the SSH transport. */
function flushed(stream: Writable): Promise<void> {
  if (stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    // Writes complete in order: the callback of an empty one runs after all before it.
    stream.write(Buffer.alloc(0), () => resolve());
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
