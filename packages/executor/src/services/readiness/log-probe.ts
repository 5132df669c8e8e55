import type { ProbeSpec } from './probe-config.ts';
import { shorten, timed, type Probe, type ProbeContext } from './probe.ts';

type LogSpec = Extract<ProbeSpec, { type: 'log' }>;

/** Lines longer than this are matched on their first this-many characters (bounds regex work). */
const MAX_LINE_CHARS = 16 * 1024;

/**
 * Passes once a line of the execution's output matches `pattern`. Output only grows, so a
 * match stays a match: after the first one the log is not read again. Each line is matched on
 * its own (no `m` flag needed for ^ and $); the last line counts once it ends with a newline or
 * the execution has finished. Reads the output the execution service keeps (its cap applies:
 * output past `maxOutputBytes` is not kept and not searched). Lines already searched are not
 * searched again in later rounds.
 */
export function logProbe(spec: LogSpec, ctx: ProbeContext): Probe {
  const streams = spec.stream === 'both' ? (['stdout', 'stderr'] as const) : ([spec.stream] as const);
  /** Characters of each stream already searched (always up to a line end). */
  const scanned = { stdout: 0, stderr: 0 };
  let matched: string | undefined;
  /** Set once the execution finished and all of its output was searched: nothing can match any more. */
  let exhausted: string | undefined;
  return {
    type: 'log',
    timeoutMs: spec.timeoutMs,
    run: () =>
      timed('log', ctx.clock, async () => {
        if (matched !== undefined) return { ok: true, message: matched };
        if (exhausted !== undefined) return { ok: false, message: exhausted };
        const view = await ctx.executions.get(spec.executionId);
        const finished = view.record.status !== 'running';
        for (const stream of streams) {
          const text = view[stream];
          const end = finished ? text.length : text.lastIndexOf('\n') + 1;
          if (end <= scanned[stream]) continue;
          const lines = text.slice(scanned[stream], end).split('\n');
          scanned[stream] = end;
          for (const line of lines) {
            if (spec.pattern.test(line.length > MAX_LINE_CHARS ? line.slice(0, MAX_LINE_CHARS) : line)) {
              matched = shorten(`${stream} of ${spec.executionId} has ${JSON.stringify(line)}`);
              return { ok: true, message: matched };
            }
          }
        }
        const what = `${spec.stream === 'both' ? 'the output' : spec.stream} of ${spec.executionId}`;
        if (finished) {
          // Output of a finished execution no longer grows: later rounds need not read it again.
          exhausted = `no line of ${what} matches /${spec.pattern.source}/, and it finished (${view.record.exitReason ?? view.record.status})`;
          return { ok: false, message: exhausted };
        }
        return { ok: false, message: `no line of ${what} (running) matches /${spec.pattern.source}/ yet` };
      }),
  };
}
