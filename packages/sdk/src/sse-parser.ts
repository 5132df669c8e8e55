/**
 * A Server-Sent Events parser that follows the WHATWG "event stream interpretation" rules
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation),
 * written against `ReadableStream` + `TextDecoder` only so it runs in browsers and Node alike.
 *
 * The rules that are easy to get wrong and that the tests pin down:
 * - a line ends at CRLF, LF or a lone CR, and a CRLF split across two chunks is one line end;
 * - a UTF-8 sequence split across chunks is decoded whole (streaming TextDecoder);
 * - one space after the colon is dropped, no more (the leading BOM is the decoder's job:
 *   `TextDecoder` drops it, as the spec's "UTF-8 decode" does);
 * - `data:` lines accumulate with "\n" between them; an event with no data is not dispatched;
 * - `id:` persists across events until changed, and an id containing NUL is ignored;
 * - a half-received event at the end of the stream is discarded, never dispatched.
 */

/**
 * One dispatched SSE message.
 *
 * @example
 * // "event: output\nid: 3\ndata: {\"seq\":3}\n\n" parses to
 * // { event: 'output', data: '{"seq":3}', id: '3' }
 */
export interface SseMessage {
  /** The `event:` field, or "message" when the event had none. @default 'message' */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last event id seen on the stream so far (the spec's "last event ID buffer"). @default '' */
  id: string;
  /** A `retry:` value in ms, when this event carried a valid one. */
  retry?: number;
}

/**
 * Incremental parser: feed it decoded text chunks, get complete messages back.
 *
 * @example
 * const parser = new SseParser();
 * parser.push('data: a\n');   // []
 * parser.push('\n');          // [{ event: 'message', data: 'a', id: '' }]
 */
export class SseParser {
  #buffer = '';
  /** True when the previous chunk ended with CR, so a leading LF of the next one is its pair. */
  #pendingCr = false;
  #eventType = '';
  #data: string[] = [];
  #lastEventId = '';
  #retry: number | undefined;

  /** Feeds a chunk of decoded text (BOM already removed); returns the messages it completed, in order. */
  push(chunk: string): SseMessage[] {
    let text = chunk;
    if (this.#pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.#pendingCr = false;

    const messages: SseMessage[] = [];
    this.#buffer += text;
    let start = 0;
    for (let i = 0; i < this.#buffer.length; i++) {
      const ch = this.#buffer.charCodeAt(i);
      if (ch !== 0x0a && ch !== 0x0d) continue;
      const line = this.#buffer.slice(start, i);
      if (ch === 0x0d) {
        if (i + 1 < this.#buffer.length) {
          if (this.#buffer.charCodeAt(i + 1) === 0x0a) i++;
        } else {
          // CR is the last char we have: its LF, if any, arrives with the next chunk.
          this.#pendingCr = true;
        }
      }
      start = i + 1;
      const message = this.#processLine(line);
      if (message) messages.push(message);
    }
    this.#buffer = this.#buffer.slice(start);
    return messages;
  }

  /** The stream ended: whatever was not terminated by a blank line is dropped, as the spec says. */
  end(): void {
    this.#buffer = '';
    this.#data = [];
    this.#eventType = '';
    this.#retry = undefined;
  }

  #processLine(line: string): SseMessage | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#eventType = value;
        break;
      case 'data':
        this.#data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.#lastEventId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.#retry = Number(value);
        break;
      default:
        // Unknown fields are ignored by the spec.
        break;
    }
    return undefined;
  }

  #dispatch(): SseMessage | undefined {
    const hasData = this.#data.length > 0;
    const message: SseMessage = {
      event: this.#eventType === '' ? 'message' : this.#eventType,
      data: this.#data.join('\n'),
      id: this.#lastEventId,
    };
    if (this.#retry !== undefined) message.retry = this.#retry;
    this.#data = [];
    this.#eventType = '';
    this.#retry = undefined;
    return hasData ? message : undefined;
  }
}

/**
 * Reads an SSE byte stream to its end and yields its messages. Breaking out of the loop
 * cancels the stream (closing the connection); an error of the underlying stream (a dropped
 * connection, an abort) is thrown from the iteration.
 *
 * @example
 * for await (const message of parseSseStream(response.body!)) console.log(message.event, message.data);
 */
export async function* parseSseStream(stream: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = stream.getReader();
  const decoder = new TextDecoder('utf-8');
  const parser = new SseParser();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        for (const message of parser.push(decoder.decode())) yield message;
        parser.end();
        return;
      }
      for (const message of parser.push(decoder.decode(value, { stream: true }))) yield message;
    }
  } finally {
    if (!finished) {
      // The consumer stopped early or the stream failed: release the connection. cancel()
      // rejects when the stream already errored; nothing is left to do about that.
      reader.cancel().catch(() => undefined);
    }
    reader.releaseLock();
  }
}
