/**
 * Writing an execution's output to this process's stdout and stderr as it arrives, and ending
 * with the execution's exit code.
 */
import type { ExecutionEvent, ExecutionResult, OutputEvent, WaitOptions } from '@faas/sdk';
import { exitStatusFor } from './exit-status.ts';

/** Writes one output event's exact bytes (not its text: binary output must pass unchanged). */
export function writeOutput(event: OutputEvent): void {
  (event.stream === 'stdout' ? process.stdout : process.stderr).write(event.bytes);
}

/** Callbacks for `executeWithCallbacks` / `handle.wait` that copy the output through. */
export function liveOutputCallbacks(): Pick<WaitOptions, 'onStdout' | 'onStderr'> {
  return {
    onStdout: (_text, event) => writeOutput(event),
    onStderr: (_text, event) => writeOutput(event),
  };
}

/** Writes an event if it is output; returns true for the terminal events. */
export function writeEvent(event: ExecutionEvent): boolean {
  if (event.type === 'output') writeOutput(event);
  return event.type === 'completed' || event.type === 'error';
}

/** Sets the exit code for a finished execution and explains a non-obvious one on stderr. */
export function exitWithResult(result: Pick<ExecutionResult, 'exitReason' | 'exitCode' | 'signal' | 'durationMs' | 'status'>): void {
  const status = exitStatusFor(result);
  if (status.message) process.stderr.write(`${status.message}\n`);
  process.exitCode = status.code;
}

/**
 * While an execution runs, Ctrl-C (or SIGTERM) asks the server to end it with the same signal
 * and lets the result arrive as usual, so the exit code says 130 / 143 as it would locally; a
 * second one exits at once. `kill` returns false when there is nothing to kill yet (the
 * execution id is not known), and then the CLI exits at once too. Returns the function that
 * removes the handlers.
 */
export function forwardInterrupts(kill: (signal: 'SIGINT' | 'SIGTERM') => boolean): () => void {
  let interrupted = false;
  const handler = (signal: 'SIGINT' | 'SIGTERM'): void => {
    const code = signal === 'SIGINT' ? 130 : 143;
    if (interrupted) process.exit(code);
    interrupted = true;
    if (!kill(signal)) process.exit(code);
    process.stderr.write(`faas: ${signal}: stopping the execution (press again to quit at once)\n`);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
