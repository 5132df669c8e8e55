import { isTerminalEvent, type ExecutionStreamEvent } from '@faas/protocol';
import { readLog, type ExecutionLogWriter } from './execution-log.ts';

/** Events a slow reader may fall behind by before it is switched back to reading the file. */
const MAX_QUEUED_EVENTS = 1024;

export interface EventStreamSource {
  path: string;
  /** The writer while the execution runs; undefined once it has finished. */
  live(): ExecutionLogWriter | undefined;
}

/**
 * Every event with seq > `after`, in order, exactly once: first replayed from the log file,
 * then live as they are appended, until the terminal event. A reader that falls far behind
 * stops buffering in memory and catches up from the file instead.
 */
export async function* streamEvents(source: EventStreamSource, after: number, signal?: AbortSignal): AsyncGenerator<ExecutionStreamEvent> {
  let cursor = after;
  for (;;) {
    if (signal?.aborted) return;
    const writer = source.live();
    if (writer === undefined || writer.isFinished) {
      for (const event of await readLog(source.path)) {
        if (event.seq <= cursor) continue;
        yield event;
        cursor = event.seq;
        if (isTerminalEvent(event)) return;
      }
      // Finished without a terminal event in the file (should not happen): stop rather than spin.
      if (writer === undefined || writer.isFinished) return;
      continue;
    }

    const queue: ExecutionStreamEvent[] = [];
    let overflow = false;
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    // Listen before reading the file: nothing appended from here on can be missed.
    const unlisten = writer.listen((event) => {
      if (queue.length >= MAX_QUEUED_EVENTS) overflow = true;
      else queue.push(event);
      wake?.();
    });
    const fileUpTo = writer.lastSeq;
    try {
      if (fileUpTo > cursor) {
        for (const event of await readLog(source.path)) {
          if (event.seq <= cursor || event.seq > fileUpTo) continue;
          yield event;
          cursor = event.seq;
          if (isTerminalEvent(event)) return;
        }
      }
      for (;;) {
        if (signal?.aborted) return;
        const event = queue.shift();
        if (event !== undefined) {
          if (event.seq <= cursor) {
            // A cursor at or past the end: the terminal event still ends the stream.
            if (isTerminalEvent(event)) return;
            continue;
          }
          if (event.seq !== cursor + 1) {
            overflow = true; // a gap means events were dropped from the queue: go back to the file
            break;
          }
          yield event;
          cursor = event.seq;
          if (isTerminalEvent(event)) return;
          continue;
        }
        if (overflow) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      unlisten();
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
