import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { ExecutionEvent } from '@faas/protocol';
import { startTestServer, type TestServer } from './fixtures/test-server.ts';

/** End-to-end: execution events over SSE and WebSocket, live, replayed and resumed. */

let server: TestServer;

before(async () => {
  server = await startTestServer();
});

after(async () => {
  await server.close();
});

/** Gives up on a stream that neither ends nor satisfies the reader within this long. */
const STREAM_DEADLINE_MS = 15_000;

interface SseMessage {
  id: string | undefined;
  event: string | undefined;
  data: ExecutionEvent;
}

interface SseResult {
  status: number;
  contentType: string | null;
  /** The JSON error body when the answer was not a stream. */
  body?: any;
  messages: SseMessage[];
  /** True when the server ended the stream (not this reader). */
  ended: boolean;
}

/** Reads `GET path` as text/event-stream until the server ends it or `stopWhen` says enough (then aborts). */
async function readSse(
  path: string,
  options: { headers?: Record<string, string>; auth?: boolean; stopWhen?: (event: ExecutionEvent) => boolean; stallAfterFirstMs?: number } = {},
): Promise<SseResult> {
  const headers: Record<string, string> = { ...(options.auth === false ? {} : { authorization: `Bearer ${server.apiKey}` }), ...options.headers };
  const abort = new AbortController();
  const deadline = setTimeout(() => abort.abort(new Error('deadline')), STREAM_DEADLINE_MS);
  try {
    const res = await fetch(`${server.url}${path}`, { headers, signal: abort.signal });
    const contentType = res.headers.get('content-type');
    if (res.status !== 200) return { status: res.status, contentType, body: await res.json(), messages: [], ended: true };
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const messages: SseMessage[] = [];
    let buffer = '';
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (abort.signal.reason instanceof Error && abort.signal.reason.message === 'deadline') assert.fail(`SSE stream ${path} neither ended nor satisfied the reader in ${STREAM_DEADLINE_MS} ms`);
        throw err;
      }
      if (chunk.done) return { status: 200, contentType, messages, ended: true };
      buffer += decoder.decode(chunk.value, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':') || line.length === 0) continue; // comment (keepalive)
          const colon = line.indexOf(':');
          const name = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
        }
        if (fields.data === undefined) continue;
        const message: SseMessage = { id: fields.id, event: fields.event, data: JSON.parse(fields.data) as ExecutionEvent };
        messages.push(message);
        if (messages.length === 1 && options.stallAfterFirstMs !== undefined) await new Promise((r) => setTimeout(r, options.stallAfterFirstMs));
        if (options.stopWhen?.(message.data)) {
          abort.abort();
          await reader.cancel().catch(() => undefined);
          return { status: 200, contentType, messages, ended: false };
        }
      }
    }
  } finally {
    clearTimeout(deadline);
  }
}

interface WsResult {
  messages: any[];
  closeCode?: number;
  closeReason?: string;
  /** HTTP status when the upgrade was refused. */
  refusedStatus?: number;
  refusedBody?: any;
  /** True when this reader cut the connection (stopWhen). */
  cut: boolean;
}

/** Reads `/api/v1/stream/...` until the server closes or `stopWhen` says enough (then the socket is cut). */
function readWs(path: string, options: { headers?: Record<string, string>; stopWhen?: (event: any) => boolean } = {}): Promise<WsResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}${path}`, { headers: options.headers ?? {} });
    const result: WsResult = { messages: [], cut: false };
    const deadline = setTimeout(() => {
      ws.terminate();
      reject(new Error(`WebSocket ${path} neither closed nor satisfied the reader in ${STREAM_DEADLINE_MS} ms`));
    }, STREAM_DEADLINE_MS);
    ws.on('message', (data, isBinary) => {
      if (result.cut) return;
      assert.equal(isBinary, false, 'events are text messages');
      const event = JSON.parse(data.toString()) as unknown;
      result.messages.push(event);
      if (options.stopWhen?.(event)) {
        result.cut = true;
        ws.terminate();
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        clearTimeout(deadline);
        result.refusedStatus = res.statusCode;
        result.refusedBody = JSON.parse(text) as unknown;
        resolve(result);
      });
    });
    ws.on('error', (err) => {
      if (result.refusedStatus !== undefined || result.cut) return;
      clearTimeout(deadline);
      reject(err);
    });
    ws.on('close', (code, reason) => {
      clearTimeout(deadline);
      result.closeCode = code;
      result.closeReason = reason.toString();
      resolve(result);
    });
  });
}

const bearer = () => ({ authorization: `Bearer ${server.apiKey}` });

async function startBackground(code: string): Promise<string> {
  const res = await server.request('POST', '/api/v1/execute', { code, background: true });
  assert.equal(res.status, 202, res.text);
  return res.body.id;
}

async function lastSeqOf(id: string): Promise<number> {
  const res = await server.request('GET', `/api/v1/executions/${id}`);
  assert.equal(res.body.status, 'completed');
  return res.body.last_seq;
}

/** seq runs 1..N without gaps or repeats, the last event (and only it) is terminal. */
function assertCompleteSequence(events: ExecutionEvent[], lastSeq: number): void {
  assert.deepEqual(
    events.map((e) => e.seq),
    Array.from({ length: lastSeq }, (_, i) => i + 1),
  );
  assert.equal(events.at(-1)!.type, 'completed');
  assert.ok(events.slice(0, -1).every((e) => e.type !== 'completed' && e.type !== 'error'));
  for (const e of events) assert.ok(!Number.isNaN(Date.parse(e.time)), `event ${e.seq} has a time`);
}

function textOf(events: ExecutionEvent[], stream: 'stdout' | 'stderr'): string {
  return events
    .filter((e) => e.type === 'output' && e.stream === stream)
    .map((e) => (e.type === 'output' && e.encoding === 'base64' ? Buffer.from(e.data, 'base64').toString('utf8') : (e as { data: string }).data))
    .join('');
}

/** A script with output on both streams and progress, slow enough to be followed live. */
const MIXED = 'echo one; echo "30 step one" >&3; sleep 0.2; echo two >&2; echo 90 >&3; sleep 0.1; echo three';

function assertMixedEvents(events: ExecutionEvent[], lastSeq: number): void {
  assertCompleteSequence(events, lastSeq);
  assert.deepEqual(new Set(events.map((e) => e.type)), new Set(['output', 'progress', 'completed']));
  assert.equal(textOf(events, 'stdout'), 'one\nthree\n');
  assert.equal(textOf(events, 'stderr'), 'two\n');
  assert.deepEqual(
    events.flatMap((e) => (e.type === 'progress' ? [[e.progress, e.message]] : [])),
    [
      [30, 'step one'],
      [90, undefined],
    ],
  );
  const completed = events.at(-1)!;
  assert.equal(completed.type === 'completed' && completed.exit_code, 0);
  assert.equal(completed.type === 'completed' && completed.exit_reason, 'exited');
}

const LINES = 50;
const NUMBERED = `for i in $(seq 1 ${LINES}); do echo line$i; sleep 0.02; done`;
const NUMBERED_OUTPUT = Array.from({ length: LINES }, (_, i) => `line${i + 1}\n`).join('');

describe('SSE: GET /api/v1/executions/:id/events', () => {
  it('streams output, progress and completed live, in seq order 1..N without gaps, then ends', async () => {
    const id = await startBackground(MIXED);
    const sse = await readSse(`/api/v1/executions/${id}/events`);
    assert.equal(sse.status, 200);
    assert.match(sse.contentType ?? '', /^text\/event-stream/);
    assert.equal(sse.ended, true);
    for (const m of sse.messages) {
      assert.equal(m.id, String(m.data.seq), 'the SSE id is the seq');
      assert.equal(m.event, m.data.type, 'the SSE event name is the type');
    }
    assertMixedEvents(
      sse.messages.map((m) => m.data),
      await lastSeqOf(id),
    );
  });

  it('accepts the key as ?access_token= (for EventSource)', async () => {
    const id = await startBackground(MIXED);
    const sse = await readSse(`/api/v1/executions/${id}/events?access_token=${encodeURIComponent(server.apiKey)}`, { auth: false });
    assert.equal(sse.status, 200, JSON.stringify(sse.body));
    assertMixedEvents(
      sse.messages.map((m) => m.data),
      await lastSeqOf(id),
    );
  });

  it('two readers at once each get every event', async () => {
    const id = await startBackground(MIXED);
    const [a, b] = await Promise.all([readSse(`/api/v1/executions/${id}/events`), readSse(`/api/v1/executions/${id}/events`)]);
    const lastSeq = await lastSeqOf(id);
    assertMixedEvents(
      a.messages.map((m) => m.data),
      lastSeq,
    );
    assert.deepEqual(
      b.messages.map((m) => m.data),
      a.messages.map((m) => m.data),
    );
  });

  it('a reader that stalls while thousands of events arrive still gets every event exactly once', async () => {
    // 4000 progress lines of ~4 KiB: more events and bytes than socket buffers hold pile up while the reader sleeps.
    const code = ['import os', 'for i in range(4000):', "    os.write(3, f'{i % 101} {i:05d}{\"p\" * 3990}\\n'.encode())", "print('end')"].join('\n');
    const res = await server.request('POST', '/api/v1/execute', { language: 'python', code, background: true });
    assert.equal(res.status, 202, res.text);
    const sse = await readSse(`/api/v1/executions/${res.body.id}/events`, { stallAfterFirstMs: 2000 });
    assert.equal(sse.ended, true);
    const events = sse.messages.map((m) => m.data);
    assertCompleteSequence(events, await lastSeqOf(res.body.id));
    const progress = events.flatMap((e) => (e.type === 'progress' ? [e] : []));
    assert.equal(progress.length, 4000);
    progress.forEach((e, i) => {
      assert.equal(e.progress, i % 101);
      assert.equal(e.message, `${String(i).padStart(5, '0')}${'p'.repeat(3990)}`);
    });
    assert.equal(textOf(events, 'stdout'), 'end\n');
  });

  it('reconnecting with ?after= and then with Last-Event-ID yields exactly the rest: nothing repeated, nothing missed', async () => {
    const id = await startBackground(NUMBERED);
    const path = `/api/v1/executions/${id}/events`;
    const first = await readSse(path, { stopWhen: (e) => e.seq >= 10 });
    assert.equal(first.ended, false);
    const seen1 = first.messages.at(-1)!.data.seq;

    const second = await readSse(`${path}?after=${seen1}`, { stopWhen: (e) => e.seq >= seen1 + 15 || e.type === 'completed' });
    assert.equal(second.messages[0]!.data.seq, seen1 + 1, '?after= resumes right after the cursor');
    assert.ok(second.messages.every((m) => m.data.type !== 'completed'), 'the second reader left before the end (the test needs a third leg)');
    const seen2 = second.messages.at(-1)!.data.seq;

    const third = await readSse(path, { headers: { 'last-event-id': String(seen2) } });
    assert.equal(third.ended, true);
    assert.equal(third.messages[0]!.data.seq, seen2 + 1, 'Last-Event-ID resumes right after it');

    const all = [...first.messages, ...second.messages, ...third.messages].map((m) => m.data);
    assertCompleteSequence(all, await lastSeqOf(id));
    assert.equal(textOf(all, 'stdout'), NUMBERED_OUTPUT);
  });

  it('a stream opened after completion replays every event, then ends', async () => {
    const res = await server.request('POST', '/api/v1/execute', { code: 'seq 1 5; echo 50 half >&3; echo err >&2' });
    assert.equal(res.status, 200);
    const sse = await readSse(`/api/v1/executions/${res.body.id}/events`);
    assert.equal(sse.ended, true);
    const events = sse.messages.map((m) => m.data);
    assertCompleteSequence(events, res.body.last_seq);
    assert.equal(textOf(events, 'stdout'), '1\n2\n3\n4\n5\n');
    assert.equal(textOf(events, 'stderr'), 'err\n');
  });

  it('a cursor at or past the terminal event gives an empty stream that ends at once', async () => {
    const res = await server.request('POST', '/api/v1/execute', { code: 'echo hi' });
    for (const after of [res.body.last_seq, res.body.last_seq + 100]) {
      const sse = await readSse(`/api/v1/executions/${res.body.id}/events?after=${after}`);
      assert.equal(sse.status, 200);
      assert.equal(sse.ended, true);
      assert.deepEqual(sse.messages, []);
    }
  });

  it('the execution record is final when the completed event arrives', async () => {
    const id = await startBackground('sleep 0.2; echo fin; exit 4');
    const sse = await readSse(`/api/v1/executions/${id}/events`, { stopWhen: (e) => e.type === 'completed' });
    const completed = sse.messages.at(-1)!.data;
    const res = await server.request('GET', `/api/v1/executions/${id}`);
    assert.equal(completed.type, 'completed');
    assert.equal(res.body.status, 'completed');
    assert.equal(res.body.exit_code, 4);
    assert.equal(completed.type === 'completed' && completed.exit_code, 4);
    assert.equal(res.body.exit_reason, 'exited');
    assert.equal(completed.type === 'completed' && completed.duration_ms, res.body.duration_ms);
    assert.equal(res.body.last_seq, completed.seq);
    assert.equal(res.body.stdout, 'fin\n');
    assert.notEqual(res.body.finished_at, null);
  });

  it('an unknown execution answers 404 EXECUTION_NOT_FOUND as a JSON error, not a stream', async () => {
    const sse = await readSse('/api/v1/executions/exec-doesnotexist00/events');
    assert.equal(sse.status, 404);
    assert.match(sse.contentType ?? '', /^application\/json/);
    assert.deepEqual(Object.keys(sse.body), ['error']);
    assert.equal(sse.body.error.code, 'EXECUTION_NOT_FOUND');
    assert.equal(sse.body.error.details.execution_id, 'exec-doesnotexist00');
  });

  it('without a key answers 401 UNAUTHORIZED; with a wrong access_token 401 INVALID_API_KEY', async () => {
    const id = await startBackground('true');
    const missing = await readSse(`/api/v1/executions/${id}/events`, { auth: false });
    assert.equal(missing.status, 401);
    assert.equal(missing.body.error.code, 'UNAUTHORIZED');
    const wrong = await readSse(`/api/v1/executions/${id}/events?access_token=not-the-key`, { auth: false });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'INVALID_API_KEY');
  });

  it('?after=abc answers 400 VALIDATION_FAILED', async () => {
    const id = await startBackground('true');
    const sse = await readSse(`/api/v1/executions/${id}/events?after=abc`);
    assert.equal(sse.status, 400);
    assert.equal(sse.body.error.code, 'VALIDATION_FAILED');
  });
});

describe('WebSocket: /api/v1/stream/:id', () => {
  it('streams output, progress and completed live with the Authorization header, then closes with 1000', async () => {
    const id = await startBackground(MIXED);
    const ws = await readWs(`/api/v1/stream/${id}`, { headers: bearer() });
    assert.equal(ws.closeCode, 1000);
    assertMixedEvents(ws.messages, await lastSeqOf(id));
  });

  it('accepts the key as ?access_token=', async () => {
    const id = await startBackground(MIXED);
    const ws = await readWs(`/api/v1/stream/${id}?access_token=${encodeURIComponent(server.apiKey)}`);
    assert.equal(ws.refusedStatus, undefined, JSON.stringify(ws.refusedBody));
    assert.equal(ws.closeCode, 1000);
    assertMixedEvents(ws.messages, await lastSeqOf(id));
  });

  it('reconnecting with ?after= yields exactly the rest: nothing repeated, nothing missed', async () => {
    const id = await startBackground(NUMBERED);
    const first = await readWs(`/api/v1/stream/${id}`, { headers: bearer(), stopWhen: (e) => e.seq >= 10 });
    assert.equal(first.cut, true);
    const seen = first.messages.at(-1).seq as number;
    const second = await readWs(`/api/v1/stream/${id}?after=${seen}`, { headers: bearer() });
    assert.equal(second.closeCode, 1000);
    assert.equal(second.messages[0].seq, seen + 1);
    const all = [...first.messages, ...second.messages] as ExecutionEvent[];
    assertCompleteSequence(all, await lastSeqOf(id));
    assert.equal(textOf(all, 'stdout'), NUMBERED_OUTPUT);
  });

  it('a stream opened after completion replays every event, then closes with 1000', async () => {
    const res = await server.request('POST', '/api/v1/execute', { code: 'seq 1 5; echo 50 half >&3' });
    const ws = await readWs(`/api/v1/stream/${res.body.id}`, { headers: bearer() });
    assert.equal(ws.closeCode, 1000);
    assertCompleteSequence(ws.messages, res.body.last_seq);
    assert.equal(textOf(ws.messages, 'stdout'), '1\n2\n3\n4\n5\n');
  });

  it('an unknown execution gets an error message EXECUTION_NOT_FOUND, then close code 1008', async () => {
    const ws = await readWs('/api/v1/stream/exec-doesnotexist00', { headers: bearer() });
    assert.equal(ws.messages.length, 1);
    assert.equal(ws.messages[0].type, 'error');
    assert.equal(ws.messages[0].code, 'EXECUTION_NOT_FOUND');
    assert.equal(typeof ws.messages[0].message, 'string');
    assert.equal(ws.closeCode, 1008);
  });

  it('?after=abc gets an error message VALIDATION_FAILED, then close code 1008', async () => {
    const id = await startBackground('true');
    const ws = await readWs(`/api/v1/stream/${id}?after=abc`, { headers: bearer() });
    assert.equal(ws.messages.length, 1);
    assert.equal(ws.messages[0].code, 'VALIDATION_FAILED');
    assert.equal(ws.closeCode, 1008);
  });

  it('without a key the upgrade is refused with 401 UNAUTHORIZED', async () => {
    const id = await startBackground('true');
    const ws = await readWs(`/api/v1/stream/${id}`);
    assert.equal(ws.refusedStatus, 401);
    assert.equal(ws.refusedBody.error.code, 'UNAUTHORIZED');
    assert.deepEqual(ws.messages, []);
  });
});
