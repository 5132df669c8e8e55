import type { Command } from 'commander';
import { NotReadyError, type ReadinessProbe, type ReadinessRound, type ReadinessStatus } from '@faas/sdk';
import { parseDuration } from '../../args/duration.ts';
import { collect, parseHttpProbe, parseLogProbe, parseTcpProbe, probeLabel } from '../../args/probe-args.ts';
import { parsePositiveInteger } from '../../args/run-args.ts';
import { createClient, EXIT_FAILURE } from '../../cli-context.ts';
import { UsageError } from '../../usage-error.ts';

interface WaitOptions {
  http?: ReadinessProbe[];
  tcp?: ReadinessProbe[];
  cmd?: string[];
  file?: string[];
  fileNonEmpty?: string[];
  log?: ReadinessProbe[];
  timeout: number;
  period?: number;
  initialDelay?: number;
  probeTimeout?: number;
  successThreshold?: number;
  failureThreshold?: number;
  stopOnFailure?: boolean;
  json?: boolean;
}

/**
 * `faas wait INSTANCE --http :8000/health --tcp 5432 --cmd 'test -f /ready' ...`: waits until
 * every probe passes (docs/readiness.md). Each round is shown on stderr: rewritten in place on a
 * terminal, otherwise one line whenever the picture changes. Exits 0 when ready; 1 on timeout
 * (or failure with --stop-on-failure), printing every probe's last failure.
 */
export function registerWaitCommand(program: Command): void {
  program
    .command('wait')
    .summary('wait until probes pass inside an instance (readiness)')
    .argument('<instance>', 'instance id')
    .option('--http <spec>', 'HTTP GET inside the instance, [HOST]:PORT[/PATH], e.g. :8000/health (200-399 passes); repeatable', collect(parseHttpProbe))
    .option('--tcp <spec>', 'TCP connect inside the instance, [HOST:]PORT; repeatable', collect(parseTcpProbe))
    .option('--cmd <code>', 'shell code run inside the instance, exit 0 passes; repeatable', collect(String))
    .option('--file <path>', 'absolute path that must exist inside the instance; repeatable', collect(String))
    .option('--file-non-empty <path>', 'as --file, and the file must not be empty; repeatable', collect(String))
    .option('--log <spec>', 'EXEC_ID:REGEX: a line of that execution\'s output must match; repeatable', collect(parseLogProbe))
    .option('--timeout <duration>', 'give up after this long, e.g. 30s', parseDuration, 30_000)
    .option('--period <duration>', 'between the starts of two rounds, at least 50ms (default 500ms)', parseDuration)
    .option('--initial-delay <duration>', 'before the first round (default 0)', parseDuration)
    .option('--probe-timeout <duration>', 'timeout of each probe (default 1s)', parseDuration)
    .option('--success-threshold <n>', 'consecutive passing rounds needed (default 1)', parsePositiveInteger)
    .option('--failure-threshold <n>', 'consecutive failing rounds that count as failed (default 3)', parsePositiveInteger)
    .option('--stop-on-failure', 'give up once --failure-threshold consecutive rounds failed')
    .option('--json', 'print the final status as JSON (and no progress)')
    .action(async (instance: string, options: WaitOptions, cmd: Command) => {
      const probes: ReadinessProbe[] = [
        ...(options.http ?? []),
        ...(options.tcp ?? []),
        ...(options.cmd ?? []).map((code): ReadinessProbe => ({ type: 'command', code })),
        ...(options.file ?? []).map((path): ReadinessProbe => ({ type: 'file', path })),
        ...(options.fileNonEmpty ?? []).map((path): ReadinessProbe => ({ type: 'file', path, nonEmpty: true })),
        ...(options.log ?? []),
      ];
      if (probes.length === 0) throw new UsageError('nothing to wait for: give at least one of --http, --tcp, --cmd, --file, --file-non-empty, --log');
      const labels = probes.map(probeLabel);
      const progress = options.json ? undefined : new RoundPrinter(labels);
      try {
        const status = await createClient(cmd).waitForReady(instance, {
          probes,
          timeout: options.timeout,
          periodMs: options.period,
          initialDelayMs: options.initialDelay,
          probeTimeoutMs: options.probeTimeout,
          successThreshold: options.successThreshold,
          failureThreshold: options.failureThreshold,
          stopOnFailure: options.stopOnFailure,
          onProbe: progress === undefined ? undefined : (round) => progress.round(round),
        });
        progress?.end();
        process.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : `ready after ${plural(status.checksPerformed, 'check')} (${status.elapsedMs} ms)\n`);
      } catch (error) {
        progress?.end();
        if (!(error instanceof NotReadyError)) throw error;
        if (options.json) process.stdout.write(`${JSON.stringify(error.readiness, null, 2)}\n`);
        else process.stderr.write(notReadyReport(error.readiness, labels));
        process.exitCode = EXIT_FAILURE;
      }
    });
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `not ready: ...` and, per probe, its last result and last failure. */
function notReadyReport(status: ReadinessStatus, labels: readonly string[]): string {
  const why = status.timedOut ? `timed out after ${status.elapsedMs} ms` : `${status.consecutiveFailures} consecutive rounds failed`;
  const lines = [`not ready: ${why} (${plural(status.checksPerformed, 'check')})`];
  status.probes.forEach((p, i) => {
    const label = labels[i] ?? p.type;
    if (!p.ok) lines.push(`  ✗ ${label}: ${p.message}`);
    else if (p.lastFailure !== null) lines.push(`  ✓ ${label} (passed last; failed before: ${p.lastFailure})`);
    else lines.push(`  ✓ ${label}`);
  });
  return `${lines.join('\n')}\n`;
}

/**
 * Round lines on stderr. On a terminal one line is rewritten in place (cut to its width);
 * elsewhere (a log, CI) a line is written only when a probe's result changes, so a long wait
 * does not flood the output.
 */
class RoundPrinter {
  readonly #labels: readonly string[];
  readonly #tty = process.stderr.isTTY === true;
  #last = '';
  #drawn = false;

  constructor(labels: readonly string[]) {
    this.#labels = labels;
  }

  round(round: ReadinessRound): void {
    const parts = round.probes.map((p, i) => `${p.ok ? '✓' : '✗'} ${this.#labels[i] ?? p.type}${p.ok ? '' : `: ${p.message}`}`);
    const picture = parts.join('  ');
    if (this.#tty) {
      const line = `[${round.round}] ${picture}`;
      const width = process.stderr.columns ?? 120;
      process.stderr.write(`\r\x1b[2K${line.length > width - 1 ? `${line.slice(0, width - 2)}…` : line}`);
      this.#drawn = true;
    } else if (picture !== this.#last) {
      process.stderr.write(`[${round.round}] ${picture}\n`);
    }
    this.#last = picture;
  }

  /** Ends the in-place line, so what follows starts on its own line. */
  end(): void {
    if (this.#drawn) process.stderr.write('\n');
    this.#drawn = false;
  }
}
