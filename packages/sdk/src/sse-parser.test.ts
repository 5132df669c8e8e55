import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSseStream, SseParser, type SseMessage } from './sse-parser.ts';

function parseAll(...chunks: string[]): SseMessage[] {
  const parser = new SseParser();
  return chunks.flatMap((chunk) => parser.push(chunk));
}

function byteStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

describe('SseParser', () => {
  test('dispatches an event with its type, id and data on a blank line', () => {
    assert.deepEqual(parseAll('event: output\nid: 3\ndata: {"seq":3}\n\n'), [{ event: 'output', id: '3', data: '{"seq":3}' }]);
  });

  test('joins multi-line data with newlines', () => {
    assert.deepEqual(parseAll('data: a\ndata: b\ndata:\n\n'), [{ event: 'message', id: '', data: 'a\nb\n' }]);
  });

  test('ignores comment lines and does not dispatch on them', () => {
    assert.deepEqual(parseAll(': keepalive\n\n: another\ndata: x\n\n'), [{ event: 'message', id: '', data: 'x' }]);
  });

  test('treats CRLF, LF and lone CR as line ends', () => {
    assert.deepEqual(parseAll('data: a\r\n\r\ndata: b\r\rdata: c\n\n').map((m) => m.data), ['a', 'b', 'c']);
  });

  test('treats a CRLF split across two chunks as one line end, not two', () => {
    // Were the CR and LF counted separately, "data: a" would end at the CR and the LF would
    // make a blank line that dispatches early; then "data: b" would be a second event.
    assert.deepEqual(parseAll('data: a\r', '\ndata: b\r\n\r\n').map((m) => m.data), ['a\nb']);
  });

  test('reassembles fields split at any point across chunks', () => {
    const text = 'event: output\nid: 7\ndata: {"a":1}\n\n';
    for (let cut = 1; cut < text.length; cut++) {
      assert.deepEqual(parseAll(text.slice(0, cut), text.slice(cut)), [{ event: 'output', id: '7', data: '{"a":1}' }], `cut at ${cut}`);
    }
  });

  test('removes exactly one space after the colon', () => {
    assert.deepEqual(parseAll('data:  two spaces\ndata:none\n\n').map((m) => m.data), [' two spaces\nnone']);
  });

  test('a field without a colon has an empty value', () => {
    assert.deepEqual(parseAll('data\ndata\n\n').map((m) => m.data), ['\n']);
  });

  test('does not dispatch an event without data, and resets its type', () => {
    assert.deepEqual(parseAll('event: output\n\ndata: x\n\n'), [{ event: 'message', id: '', data: 'x' }]);
  });

  test('keeps the last event id for following events until it changes', () => {
    const messages = parseAll('id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n');
    assert.deepEqual(messages.map((m) => m.id), ['1', '1', '2']);
  });

  test('ignores an id that contains NUL', () => {
    assert.deepEqual(parseAll('id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n').map((m) => m.id), ['1', '1']);
  });

  test('reads a numeric retry and ignores a non-numeric one', () => {
    const [first, second] = parseAll('retry: 1500\ndata: a\n\nretry: soon\ndata: b\n\n');
    assert.equal(first?.retry, 1500);
    assert.equal(second?.retry, undefined);
  });

  test('ignores unknown fields', () => {
    assert.deepEqual(parseAll('foo: bar\ndata: a\n\n').map((m) => m.data), ['a']);
  });
});

describe('parseSseStream', () => {
  test('decodes a UTF-8 character split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: é€😀\n\n');
    const chunks = [bytes.slice(0, 7), bytes.slice(7, 9), bytes.slice(9, 12), bytes.slice(12)];
    const messages: SseMessage[] = [];
    for await (const message of parseSseStream(byteStream(chunks))) messages.push(message);
    assert.deepEqual(messages.map((m) => m.data), ['é€😀']);
  });

  test('drops a leading byte order mark', async () => {
    const bytes = new TextEncoder().encode('\ufeffdata: a\n\n');
    const messages: SseMessage[] = [];
    for await (const message of parseSseStream(byteStream([bytes]))) messages.push(message);
    assert.deepEqual(messages.map((m) => m.data), ['a']);
  });

  test('discards an event that was not terminated when the stream ended', async () => {
    const messages: SseMessage[] = [];
    for await (const message of parseSseStream(byteStream([new TextEncoder().encode('data: a\n\ndata: half')]))) messages.push(message);
    assert.deepEqual(messages.map((m) => m.data), ['a']);
  });

  test('cancels the underlying stream when the consumer stops early', async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode('data: tick\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const message of parseSseStream(stream)) {
      assert.equal(message.data, 'tick');
      break;
    }
    assert.equal(cancelled, true);
  });

  test('throws the error of a stream that fails mid-way', async () => {
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulls++ === 0) controller.enqueue(new TextEncoder().encode('data: a\n\n'));
        else controller.error(new Error('socket hang up'));
      },
    });
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const message of parseSseStream(stream)) seen.push(message.data);
    }, /socket hang up/);
    assert.deepEqual(seen, ['a']);
  });
});
