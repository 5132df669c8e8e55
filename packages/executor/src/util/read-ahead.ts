import type { Readable } from 'node:stream';

/**
 * A stream's chunks as an AsyncIterable that keeps reading up to `maxBytes` ahead of its
 * consumer.
 *
 * Why: an `http.IncomingMessage` has a 16 KiB highWaterMark, and node's HTTP parser stops
 * reading the socket as soon as one chunk (64 KiB) pushes it past that. Iterated directly, a
 * request body is therefore read one chunk at a time, the socket idle whenever the consumer
 * awaits something else (a disk write, say). Here the stream flows into a queue and is paused
 * only when the queue holds `maxBytes`, so the socket keeps being read while the consumer
 * works, and memory stays bounded by `maxBytes` plus one chunk.
 *
 * Destroying the stream or breaking out of the iteration ends it; a stream error is thrown
 * from the next step.
 *
 * @example
 * for await (const chunk of readAhead(request.raw, 4 << 20)) handle(chunk);
 */
export function readAhead(stream: Readable, maxBytes: number): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      const queue: Uint8Array[] = [];
      let head = 0;
      let queued = 0;
      let ended = false;
      let failure: { error: unknown } | undefined;
      let wake: (() => void) | undefined;
      const notify = (): void => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      const onData = (chunk: Uint8Array): void => {
        queue.push(chunk);
        queued += chunk.length;
        if (queued >= maxBytes) stream.pause();
        notify();
      };
      const onEnd = (): void => {
        ended = true;
        notify();
      };
      const onError = (error: unknown): void => {
        failure ??= { error };
        notify();
      };
      const onClose = (): void => {
        // Closed without 'end' (aborted request): a cut, which the consumer sees as the end.
        ended = true;
        notify();
      };
      const detach = (): void => {
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.off('error', onError);
        stream.off('close', onClose);
      };
      stream.on('data', onData);
      stream.once('end', onEnd);
      stream.on('error', onError);
      stream.once('close', onClose);
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          for (;;) {
            if (head < queue.length) {
              const chunk = queue[head]!;
              queue[head++] = undefined as unknown as Uint8Array;
              if (head > 1024 && head * 2 > queue.length) {
                queue.splice(0, head);
                head = 0;
              }
              queued -= chunk.length;
              if (queued < maxBytes && stream.isPaused() && !ended) stream.resume();
              return { value: chunk, done: false };
            }
            if (failure) {
              detach();
              throw failure.error;
            }
            if (ended) {
              detach();
              return { value: undefined, done: true };
            }
            await new Promise<void>((resolve) => (wake = resolve));
          }
        },
        async return(): Promise<IteratorResult<Uint8Array>> {
          detach();
          stream.resume(); // let the rest drain rather than hold the socket paused
          return { value: undefined, done: true };
        },
      };
    },
  };
}
