import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { isFaasError } from '@faas/protocol/errors';
import { completedEvent, outputEvent, sendError, sendJson, sseEvent, startFakeServer, startSse, wireExecution, type FakeHandler, type FakeServer } from '../test/fixtures/fake-server.ts';
import { streamExecutionEvents, streamSessionEvents, type StreamExecutionOptions } from './event-stream.ts';
import type { ExecutionEvent, ExecutionStreamEvent } from './execution-types.ts';
import { HttpTransport } from './http-transport.ts';

let server: FakeServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(handler: FakeHandler, maxRetries = 3): Promise<{ server: FakeServer; transport: HttpTransport }> {
  server = await startFakeServer(handler);
  return { server, transport: new HttpTransport({ baseUrl: server.url, maxRetries, backoff: { baseDelayMs: 1, maxDelayMs: 5 } }) };
}

async function collect(transport: HttpTransport, options: StreamExecutionOptions = {}): Promise<ExecutionEvent[]> {
  const events: ExecutionEvent[] = [];
  for await (const event of streamExecutionEvents(transport, 'exec-1', options)) events.push(event);
  return events;
}

function afterParam(url: string): string | null {
  return new URL(url, 'http://x').searchParams.get('after');
}

describe('streamExecutionEvents', () => {
  test('maps events to camelCase and stops after completed', async () => {
    const { transport } = await setup((_req, res) => {
      startSse(res);
      res.write(sseEvent(outputEvent(1, 'stdout', 'hi\n')));
      res.write(sseEvent({ type: 'progress', seq: 2, time: '2026-12-04T16:00:00.000Z', progress: 40, message: 'compiling' }));
      res.write(sseEvent(completedEvent(3, 7)));
      // The connection stays open: the client must stop on its own after the terminal event.
    });
    const events = await collect(transport);
    assert.deepEqual(events.map((e) => e.type), ['output', 'progress', 'completed']);
    const [output, progress, completed] = events;
    assert.equal(output?.type === 'output' && output.data, 'hi\n');
    assert.deepEqual(output?.type === 'output' && [...output.bytes], [...new TextEncoder().encode('hi\n')]);
    assert.ok(output?.time instanceof Date);
    assert.equal(progress?.type === 'progress' && progress.message, 'compiling');
    assert.equal(completed?.type === 'completed' && completed.exitCode, 7);
    assert.equal(completed?.type === 'completed' && completed.exitReason, 'exited');
  });

  test('skips event types newer than the SDK, and session events unless asked for them, without throwing', async () => {
    const time = '2026-12-04T16:00:00.000Z';
    const { transport } = await setup((_req, res) => {
      startSse(res);
      res.write(sseEvent({ type: 'session.warning', seq: 1, time, session_id: 'sess-1', reason: 'max_duration', deadline: time, grace_period_ms: 500 }));
      res.write(sseEvent({ type: 'some.future.event', seq: 2, time, anything: [1, 2] }));
      res.write(sseEvent({ type: 'session.state', seq: 3, time, session_id: 'sess-1', state: 'expiring', state_reason: 'max_duration', deadline: time }));
      res.write(sseEvent({ type: 'session.checkpoint', seq: 4, time, session_id: 'sess-1', checkpoint: { id: 'snap-1', content_hash: 'a'.repeat(64), created_at: time, size_bytes: 9 } }));
      res.write(sseEvent(completedEvent(5, 0)));
    });
    assert.deepEqual((await collect(transport)).map((e) => `${e.seq}:${e.type}`), ['5:completed']);
    const events: ExecutionStreamEvent[] = [];
    for await (const event of streamSessionEvents(transport, 'exec-1')) events.push(event);
    assert.deepEqual(events.map((e) => `${e.seq}:${e.type}`), ['1:session.warning', '3:session.state', '4:session.checkpoint', '5:completed']);
    const [warning, state, checkpoint] = events;
    assert.ok(warning?.type === 'session.warning' && warning.gracePeriodMs === 500 && warning.deadline instanceof Date && warning.sessionId === 'sess-1');
    assert.ok(state?.type === 'session.state' && state.state === 'expiring' && state.stateReason === 'max_duration' && state.deadline instanceof Date);
    assert.ok(checkpoint?.type === 'session.checkpoint' && checkpoint.checkpoint.sizeBytes === 9 && checkpoint.checkpoint.createdAt instanceof Date);
  });

  test('decodes base64 output into text and exact bytes', async () => {
    const raw = new Uint8Array([0x66, 0x6f, 0xff, 0x0a]); // "fo", an invalid byte, "\n"
    const { transport } = await setup((_req, res) => {
      startSse(res);
      res.write(sseEvent({ ...outputEvent(1, 'stdout', Buffer.from(raw).toString('base64')), encoding: 'base64' }));
      res.end(sseEvent(completedEvent(2)));
    });
    const [output] = await collect(transport);
    assert.ok(output?.type === 'output');
    assert.deepEqual([...output.bytes], [...raw]);
    assert.equal(output.data, 'fo\ufffd\n');
  });

  test('reconnects after a dropped connection with after = last seq and yields each seq exactly once', async () => {
    const { server, transport } = await setup((req, res, index) => {
      startSse(res);
      if (index === 0) {
        res.write(sseEvent(outputEvent(1, 'stdout', 'a')));
        res.write(sseEvent(outputEvent(2, 'stdout', 'b')));
        res.write(sseEvent(outputEvent(3, 'stderr', 'c')));
        setTimeout(() => res.socket?.destroy(), 20); // mid-stream drop, no terminal event
        return;
      }
      assert.equal(afterParam(req.url), '3');
      res.write(sseEvent(outputEvent(4, 'stdout', 'd')));
      res.end(sseEvent(completedEvent(5)));
    });
    const events = await collect(transport);
    assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5]);
    assert.equal(server.requests.length, 2);
    assert.equal(afterParam(server.requests[0]?.url ?? ''), '0');
  });

  test('drops replayed events when a server sends seqs it already delivered', async () => {
    const { transport } = await setup((_req, res, index) => {
      startSse(res);
      res.write(sseEvent(outputEvent(1, 'stdout', 'a')));
      res.write(sseEvent(outputEvent(2, 'stdout', 'b')));
      if (index === 0) {
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.end(sseEvent(completedEvent(3)));
    });
    assert.deepEqual((await collect(transport)).map((e) => e.seq), [1, 2, 3]);
  });

  test('reconnects when the stream ends cleanly before the terminal event', async () => {
    const { server, transport } = await setup((_req, res, index) => {
      startSse(res);
      if (index === 0) res.end(sseEvent(outputEvent(1, 'stdout', 'a')));
      else res.end(sseEvent(completedEvent(2)));
    });
    assert.deepEqual((await collect(transport)).map((e) => e.seq), [1, 2]);
    assert.equal(server.requests.length, 2);
  });

  test('starts after the given seq', async () => {
    const { server, transport } = await setup((_req, res) => {
      startSse(res);
      res.end(sseEvent(completedEvent(9)));
    });
    await collect(transport, { after: 8 });
    assert.equal(afterParam(server.requests[0]?.url ?? ''), '8');
  });

  test('asked for events after the terminal one, ends without an event or a retry storm', async () => {
    const { server, transport } = await setup((req, res) => {
      if (req.url.includes('/events')) {
        startSse(res);
        res.end(); // nothing after seq 5
      } else sendJson(res, 200, wireExecution({ last_seq: 5 }));
    });
    assert.deepEqual(await collect(transport, { after: 5 }), []);
    assert.deepEqual(server.requests.map((r) => new URL(r.url, 'http://x').pathname), ['/api/v1/executions/exec-1/events', '/api/v1/executions/exec-1']);
  });

  test('gives up with CONNECTION_FAILED after maxRetries drops in a row without progress', async () => {
    const { server, transport } = await setup((_req, res) => {
      startSse(res);
      setTimeout(() => res.socket?.destroy(), 5);
    }, 2);
    await assert.rejects(collect(transport), (error: unknown) => isFaasError(error) && error.code === 'CONNECTION_FAILED');
    // 3 stream opens, each followed by one look at the record (answered with a broken stream).
    assert.equal(server.requests.filter((r) => r.url.includes('/events')).length, 3);
  });

  test('stops after an error event', async () => {
    const { transport } = await setup((_req, res) => {
      startSse(res);
      res.write(sseEvent({ type: 'error', seq: 1, time: '2026-12-04T16:00:00.000Z', code: 'EXECUTION_INTERRUPTED', message: 'restart' }));
    });
    const events = await collect(transport);
    assert.deepEqual(events.map((e) => e.type), ['error']);
    assert.equal(events[0]?.type === 'error' && events[0].code, 'EXECUTION_INTERRUPTED');
  });

  test('an unlogged error event (seq reused) is a drop: it reconnects and delivers the rest', async () => {
    const { transport } = await setup((_req, res, index) => {
      startSse(res);
      if (index === 0) {
        res.write(sseEvent(outputEvent(1, 'stdout', 'a')));
        res.end(sseEvent({ type: 'error', seq: 1, time: '2026-12-04T16:00:00.000Z', code: 'INTERNAL_ERROR', message: 'log read failed' }));
      } else res.end(sseEvent(completedEvent(2)));
    });
    assert.deepEqual((await collect(transport)).map((e) => `${e.seq}:${e.type}`), ['1:output', '2:completed']);
  });

  test('an unlogged error event that persists is thrown with its own code', async () => {
    const { transport } = await setup((req, res) => {
      if (!req.url.includes('/events')) return sendJson(res, 200, wireExecution({ status: 'running', last_seq: 0 }));
      startSse(res);
      res.end(sseEvent({ type: 'error', seq: 0, time: '2026-12-04T16:00:00.000Z', code: 'RUNTIME_ERROR', message: 'log unreadable' }));
    }, 1);
    await assert.rejects(collect(transport), (error: unknown) => isFaasError(error) && error.code === 'RUNTIME_ERROR' && error.message === 'log unreadable');
  });

  test('throws the FaasError of an unknown execution', async () => {
    const { transport } = await setup((_req, res) => sendError(res, 404, 'EXECUTION_NOT_FOUND', 'no execution exec-1'));
    await assert.rejects(collect(transport), (error: unknown) => isFaasError(error) && error.code === 'EXECUTION_NOT_FOUND' && error.status === 404);
  });

  test('aborting the signal ends the iteration quietly and closes the connection', async () => {
    let closed = false;
    const { transport } = await setup((_req, res) => {
      startSse(res);
      res.write(sseEvent(outputEvent(1, 'stdout', 'a')));
      res.on('close', () => {
        closed = true;
      });
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const controller = new AbortController();
      const events: ExecutionEvent[] = [];
      for await (const event of streamExecutionEvents(transport, 'exec-1', { signal: controller.signal })) {
        events.push(event);
        setTimeout(() => controller.abort(), 20); // abort while the next read is pending
      }
      assert.deepEqual(events.map((e) => e.seq), [1]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(closed, true);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('an already aborted signal yields nothing and sends nothing', async () => {
    const { server, transport } = await setup((_req, res) => startSse(res));
    const events = await collect(transport, { signal: AbortSignal.abort() });
    assert.deepEqual(events, []);
    assert.equal(server.requests.length, 0);
  });

  test('breaking out of the loop closes the connection', async () => {
    let closed = false;
    const { transport } = await setup((_req, res) => {
      startSse(res);
      res.write(sseEvent(outputEvent(1, 'stdout', 'a')));
      res.on('close', () => {
        closed = true;
      });
    });
    for await (const event of streamExecutionEvents(transport, 'exec-1')) {
      assert.equal(event.seq, 1);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(closed, true);
  });
});
