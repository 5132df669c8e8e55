/**
 * How an execution's end becomes the CLI's exit code, following the shell conventions people
 * script against: the command's own code, 124 for a timeout (as timeout(1)), 128 + n for a
 * process ended by signal n (137 for SIGKILL, hence for the OOM killer).
 */
import { constants } from 'node:os';

/** The fields of a result or a `completed` event that decide the exit code. */
export interface ExecutionEnd {
  exitReason: 'exited' | 'signaled' | 'timeout' | 'oom' | 'killed' | null;
  exitCode: number | null;
  signal: string | null;
  durationMs?: number | null;
  status?: 'running' | 'completed' | 'interrupted';
}

/** Exit code and, when the code alone would puzzle a reader, a line for stderr. */
export interface ExitStatus {
  code: number;
  message?: string;
}

/** @default 124, as timeout(1) */
export const TIMEOUT_EXIT_CODE = 124;
const SIGKILL_NUMBER = 9;

/**
 * Signal number of a name like "SIGTERM"; unknown or missing names count as SIGKILL, the
 * signal faas uses when it ends a process itself.
 *
 * @example
 * signalNumber('SIGTERM'); // 15
 */
export function signalNumber(signal: string | null): number {
  if (signal === null) return SIGKILL_NUMBER;
  const number = (constants.signals as Record<string, number | undefined>)[signal];
  return number ?? SIGKILL_NUMBER;
}

/**
 * @example
 * exitStatusFor({ exitReason: 'exited', exitCode: 3, signal: null }); // { code: 3 }
 * exitStatusFor({ exitReason: 'timeout', exitCode: null, signal: 'SIGKILL' }).code; // 124
 */
export function exitStatusFor(end: ExecutionEnd): ExitStatus {
  const after = end.durationMs === undefined || end.durationMs === null ? '' : ` after ${end.durationMs} ms`;
  if (end.status === 'interrupted') return { code: 1, message: 'faas: the execution was interrupted (the executor restarted while it ran)' };
  switch (end.exitReason) {
    case 'exited':
      return { code: end.exitCode ?? 1 };
    case 'timeout':
      return { code: TIMEOUT_EXIT_CODE, message: `faas: the execution timed out${after} and was killed` };
    case 'oom':
      return { code: 128 + SIGKILL_NUMBER, message: 'faas: the execution was killed: out of memory (it passed the memory limit)' };
    case 'killed':
      return { code: 128 + signalNumber(end.signal), message: `faas: the execution was killed (${end.signal ?? 'SIGKILL'})` };
    case 'signaled':
      return { code: 128 + signalNumber(end.signal), message: `faas: the process was ended by ${end.signal ?? 'a signal'}` };
    case null:
      return { code: 1, message: 'faas: the execution has not finished' };
  }
}
