import { randomUUID } from 'node:crypto';
import { WORKSPACE } from '../../runtime/bwrap/host-environment.ts';
import { sandboxBaseEnv } from '../sandbox-env.ts';
import type { ProbeSpec } from './probe-config.ts';
import { shorten, timed, type Probe, type ProbeContext } from './probe.ts';

type CommandSpec = Extract<ProbeSpec, { type: 'command' }>;

/** Output kept per run: enough for a message, never a flood in memory. */
const MAX_OUTPUT_BYTES = 4096;

/**
 * Runs a process inside the instance (as an exec: the sandbox user, no capabilities, its own
 * limit group) and passes on exit 0. Not an execution: a probe every 50 ms must not leave a
 * record and a log behind each time. Past its timeout its whole process tree is killed.
 */
export function commandProbe(spec: CommandSpec, ctx: ProbeContext): Probe {
  const shown = spec.argv[0] === '/bin/sh' && spec.argv[1] === '-c' && spec.argv.length === 3 ? spec.argv[2]! : spec.argv.join(' ');
  return {
    type: 'command',
    timeoutMs: spec.timeoutMs,
    run: () =>
      timed('command', ctx.clock, async () => {
        const out: Buffer[] = [];
        let kept = 0;
        const keep = (chunk: Buffer) => {
          if (kept >= MAX_OUTPUT_BYTES) return;
          const piece = chunk.subarray(0, MAX_OUTPUT_BYTES - kept);
          out.push(piece);
          kept += piece.length;
        };
        const { instance } = ctx;
        const processId = `probe-${randomUUID()}`;
        const env = { ...sandboxBaseEnv(instance.id), ...instance.envVars };
        const proc = await ctx.runtime.exec(instance.id, {
          executionId: processId,
          argv: spec.argv,
          env,
          envFromServerOnly: Object.keys(instance.envVars).length === 0,
          workingDir: WORKSPACE,
          sink: { stdout: keep, stderr: keep, progress: () => undefined },
        });
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          void proc.signal('SIGKILL');
        }, spec.timeoutMs);
        const exit = await proc.wait().finally(() => clearTimeout(timer));
        const output = Buffer.concat(out).toString('utf8');
        const said = output.trim() === '' ? '' : `: ${output}`;
        if (timedOut) return { ok: false, message: shorten(`${shown}: still running after ${spec.timeoutMs} ms (probe timeout), killed${said}`) };
        if (exit.exitCode === 0) return { ok: true, message: shorten(`${shown}: exit 0${said}`) };
        const how = exit.exitCode !== null ? `exit ${exit.exitCode}` : `killed by ${exit.signal ?? 'a signal'}`;
        return { ok: false, message: shorten(`${shown}: ${how}${said}`) };
      }),
  };
}

