import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ExecutionStreamEvent } from '@faas/protocol';
import { ExecutionLogWriter, logPath, parseLog, readLog, readLogSync } from './execution-log.ts';

const dir = mkdtempSync(join(tmpdir(), 'faas-execution-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const freshPath = () => join(dir, 'logs', `log-${++n}.ndjson`);

function out(data: string) {
  return { type: 'output' as const, stream: 'stdout' as const, data };
}

describe('ExecutionLogWriter', () => {
  it('assigns seq 1..N in append order and stamps each event with the clock', async () => {
    const path = freshPath();
    const now = new Date('2026-01-02T03:04:05.678Z');
    const writer = new ExecutionLogWriter(path, 0, () => now);
    const appended = [writer.append(out('a')), writer.append({ type: 'progress', progress: 10 }), writer.append(out('b'))];
    assert.deepEqual(appended.map((e) => e.seq), [1, 2, 3]);
    assert.equal(writer.lastSeq, 3);
    assert.ok(appended.every((e) => e.time === now.toISOString()));
    await writer.close();
    const events = await readLog(path);
    assert.deepEqual(events, appended);
    assert.equal(readFileSync(path, 'utf8').split('\n').length, 4, 'one line per event, each ended by a newline');
  });

  it('creates the log file with mode 0600', async () => {
    const path = freshPath();
    const writer = new ExecutionLogWriter(path);
    writer.append(out('x'));
    await writer.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('writes an event to the file before any listener sees it', async () => {
    const path = freshPath();
    const writer = new ExecutionLogWriter(path);
    const seenInFile: number[][] = [];
    writer.listen((event) => seenInFile.push(readLogSync(path).map((e) => e.seq).filter((s) => s === event.seq)));
    writer.append(out('1'));
    writer.append(out('2'));
    assert.deepEqual(seenInFile, [[1], [2]]);
    await writer.close();
  });

  it('stops calling a listener once it unlistens', async () => {
    const writer = new ExecutionLogWriter(freshPath());
    const seen: number[] = [];
    const unlisten = writer.listen((e) => seen.push(e.seq));
    writer.append(out('1'));
    unlisten();
    writer.append(out('2'));
    assert.deepEqual(seen, [1]);
    await writer.close();
  });

  it('is finished after a completed or an error event, not before', async () => {
    const a = new ExecutionLogWriter(freshPath());
    a.append(out('x'));
    assert.equal(a.isFinished, false);
    a.append({ type: 'completed', exit_code: 0, exit_reason: 'exited', signal: null, duration_ms: 1, output_truncated: false });
    assert.equal(a.isFinished, true);
    await a.close();
    const b = new ExecutionLogWriter(freshPath());
    b.append({ type: 'error', code: 'EXECUTION_INTERRUPTED', message: 'gone' });
    assert.equal(b.isFinished, true);
    await b.close();
  });

  it('continues numbering from startSeq when an existing log is reopened, keeping the earlier events', async () => {
    const path = freshPath();
    const first = new ExecutionLogWriter(path);
    first.append(out('a'));
    first.append(out('b'));
    first.append(out('c'));
    first.closeSync();
    const reopened = new ExecutionLogWriter(path, readLogSync(path).at(-1)!.seq);
    const event = reopened.append({ type: 'error', code: 'EXECUTION_INTERRUPTED', message: 'restart' });
    assert.equal(event.seq, 4);
    await reopened.close();
    const events = readLogSync(path);
    assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4]);
    assert.deepEqual(events.map((e) => e.type), ['output', 'output', 'output', 'error']);
  });

  it('refuses to append after it was closed', async () => {
    const writer = new ExecutionLogWriter(freshPath());
    await writer.close();
    assert.throws(() => writer.append(out('late')), /closed/);
  });
});

describe('parseLog', () => {
  const line = (e: object) => `${JSON.stringify(e)}\n`;
  const e1 = { type: 'output', stream: 'stdout', data: 'one', seq: 1, time: '2026-01-01T00:00:00.000Z' };
  const e2 = { type: 'output', stream: 'stderr', data: 'two', seq: 2, time: '2026-01-01T00:00:00.001Z' };

  it('ignores a torn last line (a crash in the middle of a write)', () => {
    const torn = line(e1) + line(e2) + '{"type":"output","stream":"std';
    assert.deepEqual(parseLog(torn), [e1, e2] as ExecutionStreamEvent[]);
  });

  it('ignores a complete last object that lacks its newline (the write was cut before it)', () => {
    assert.deepEqual(parseLog(line(e1) + JSON.stringify(e2)), [e1] as ExecutionStreamEvent[]);
  });

  it('trusts nothing after a corrupt line', () => {
    assert.deepEqual(parseLog(`${line(e1)}{garbage\n${line(e2)}`), [e1] as ExecutionStreamEvent[]);
  });

  it('parses an empty text to no events and skips blank lines', () => {
    assert.deepEqual(parseLog(''), []);
    assert.deepEqual(parseLog(`\n${line(e1)}\n`), [e1] as ExecutionStreamEvent[]);
  });

  it('reads a torn log file from disk up to its last whole line', async () => {
    const path = freshPath();
    const writer = new ExecutionLogWriter(path);
    writer.append(out('kept'));
    writer.closeSync();
    appendFileSync(path, '{"type":"outp');
    assert.deepEqual((await readLog(path)).map((e) => e.seq), [1]);
    assert.deepEqual(readLogSync(path).map((e) => e.seq), [1]);
  });

  it('reads a missing log as no events', async () => {
    assert.deepEqual(await readLog(join(dir, 'missing.ndjson')), []);
    assert.deepEqual(readLogSync(join(dir, 'missing.ndjson')), []);
  });
});

describe('logPath', () => {
  it('shards logs by the last two characters of the execution id', () => {
    assert.equal(logPath('/data', 'exec-abcdef'), '/data/logs/ef/exec-abcdef.ndjson');
  });
});
