import { InvalidArgumentError, type Command } from 'commander';
import type { FaaSPlatformClient, LongRunningOptions, LongRunningRequest, SessionInfo } from '@faas/sdk';
import { parseDuration } from '../../args/duration.ts';
import { parseEnvVar, parseNonNegativeInteger, parsePositiveInteger, parsePositiveNumber, toRunTarget } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { forwardInterrupts, writeOutput } from '../../output/live-output.ts';
import { describeSessionEvent, formatDeadline, sessionExitStatus } from '../../output/session-format.ts';

interface StartOptions {
  maxDuration: number;
  heartbeat?: number;
  idleTimeout?: number;
  grace?: number;
  checkpointEvery?: number;
  maxExtensions?: number;
  autoExtend?: boolean;
  instance?: string;
  env?: string;
  envVar?: Record<string, string>;
  workdir?: string;
  memory?: number;
  cpus?: number;
  pids?: number;
  follow?: boolean;
  json?: boolean;
}

/**
 * `faas session start --max-duration 2h [...] -- cmd...`: starts a long-running session and
 * prints it; with --follow, streams its output and session events while heartbeating, until
 * it ends, and exits with the command's code (124 when the hard cap or the idle timeout ended
 * it, 1 for another termination, the reason on stderr).
 */
export function registerSessionStart(session: Command): void {
  session
    .command('start')
    .summary('start a long-running session (deadline, heartbeats, checkpoints)')
    .description(
      'Start a command as a long-running session (docs/sessions.md), in a fresh instance unless --instance. ' +
        'It ends at --max-duration (unless extended), or earlier when no heartbeat came for --idle-timeout. ' +
        'Prints the session id and deadline; with --follow, writes the output and the session events while ' +
        'heartbeating every --heartbeat, until the session ends. Without --follow nothing heartbeats: with an ' +
        "idle timeout, keep it alive with `faas session heartbeat` (or the SDK's handle).",
    )
    .requiredOption('--max-duration <duration>', 'hard cap, e.g. 2h (at most the server\'s cap, 24h by default)', parseDuration)
    .option('--heartbeat <duration>', 'heartbeat interval, e.g. 30s (default: a third of --idle-timeout, at most 30s)', parsePositiveDuration)
    .option('--idle-timeout <duration>', 'end the session when no heartbeat came for this long, e.g. 5m (default: none)', parseDuration)
    .option('--grace <duration>', 'between SIGTERM and SIGKILL when the session is ended (default 10s)', parseDuration)
    .option('--checkpoint-every <duration>', 'snapshot the instance this often, e.g. 10m (default: only a final one)', parseDuration)
    .option('--max-extensions <n>', 'how many times the deadline may be extended (default 0)', parseNonNegativeInteger)
    .option('--auto-extend', 'at the deadline, extend by --max-duration instead of ending, while extensions remain')
    .option('--instance <id>', 'run in this existing instance')
    .option('--env <name>', 'environment (base filesystem) of a fresh instance; the server default is "host"')
    .option('-e, --env-var <NAME=VALUE>', 'environment variable for the process (repeatable)', parseEnvVar)
    .option('--workdir <dir>', 'working directory inside the instance (default /workspace)')
    .option('--memory <mb>', 'memory limit of a fresh instance in MiB', parsePositiveInteger)
    .option('--cpus <n>', 'CPU quota of a fresh instance in cores, e.g. 0.5', parsePositiveNumber)
    .option('--pids <n>', 'process and thread limit of a fresh instance', parsePositiveInteger)
    .option('-f, --follow', 'stream the output and session events while heartbeating, until the session ends; exit with its code')
    .option('--json', 'print the session as JSON (with --follow: the final session, instead of the output)')
    .argument('<command...>', 'what to run, after --: several words are an argv; one word with spaces is a shell string')
    .addHelpText('after', "\nExamples:\n  faas session start --max-duration 2h --idle-timeout 5m --heartbeat 30s --checkpoint-every 10m --follow -- python3 train.py\n  faas session start --max-duration 24h --max-extensions 3 -- './crawl --resume'")
    .action(async (words: string[], options: StartOptions, cmd: Command) => {
      const client = createClient(cmd);
      const request: LongRunningRequest = {
        ...toRunTarget(words),
        instanceId: options.instance,
        env: options.env,
        envVars: options.envVar,
        workingDir: options.workdir,
        memoryMb: options.memory,
        cpuCores: options.cpus,
        pidsMax: options.pids,
      };
      const settings: LongRunningOptions = {
        maxDuration: options.maxDuration,
        heartbeatInterval: options.heartbeat,
        idleTimeout: options.idleTimeout,
        gracePeriod: options.grace,
        checkpointInterval: options.checkpointEvery,
        maxExtensions: options.maxExtensions,
        autoExtend: options.autoExtend,
      };
      if (!options.follow) {
        // This process exits at once: a heartbeat timer here would be a promise it cannot keep.
        const started = await client.startLongRunningExecution(request, { ...settings, heartbeat: false });
        started.close();
        process.stdout.write(options.json ? `${JSON.stringify(started.info, null, 2)}\n` : summary(started.info));
        return;
      }
      const final = await follow(client, request, settings, options.json === true);
      if (options.json) process.stdout.write(`${JSON.stringify(final, null, 2)}\n`);
      const status = sessionExitStatus(final);
      if (status.message) process.stderr.write(`${status.message}\n`);
      process.exitCode = status.code;
    });
}

function parsePositiveDuration(value: string): number {
  const ms = parseDuration(value);
  if (ms === 0) throw new InvalidArgumentError('must be more than 0');
  return ms;
}

function summary(info: SessionInfo): string {
  return `session ${info.id}\nexecution ${info.executionId}\ninstance ${info.instanceId}\ndeadline ${formatDeadline(info.deadline)}\n`;
}

/**
 * Starts with callbacks, so the output is followed from its first byte; heartbeats until the
 * end. Ctrl-C (or SIGTERM) stops the session gracefully and lets its end arrive as usual.
 */
async function follow(client: FaaSPlatformClient, request: LongRunningRequest, settings: LongRunningOptions, json: boolean): Promise<SessionInfo> {
  let sessionId: string | undefined;
  const stopForwarding = forwardInterrupts(() => {
    if (sessionId === undefined) return false;
    client.stopSession(sessionId).catch(() => undefined);
    return true;
  });
  const event = (line: string): void => {
    if (!json) process.stderr.write(`${line}\n`);
  };
  const started = await client.startLongRunningExecution(request, {
    ...settings,
    onOutput: json ? undefined : writeOutput,
    onWarning: (e) => event(describeSessionEvent(e)),
    onCheckpoint: (_c, e) => event(describeSessionEvent(e)),
    onStateChange: (_s, _r, e) => event(describeSessionEvent(e)),
    onError: (error) => event(`faas: session: ${error instanceof Error ? error.message : String(error)}`),
  });
  sessionId = started.id;
  if (!json) process.stderr.write(`faas: session ${started.id} started (execution ${started.executionId}), deadline ${formatDeadline(started.deadline)}\n`);
  try {
    return await started.wait();
  } finally {
    started.close();
    stopForwarding();
  }
}
