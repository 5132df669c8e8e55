import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { exitStatusFor, signalNumber } from './exit-status.ts';

describe('exitStatusFor', () => {
  test('an exited process gives its own exit code, silently', () => {
    assert.deepEqual(exitStatusFor({ exitReason: 'exited', exitCode: 3, signal: null }), { code: 3 });
    assert.deepEqual(exitStatusFor({ exitReason: 'exited', exitCode: 0, signal: null }), { code: 0 });
  });

  test('a timeout exits 124 and says so', () => {
    const status = exitStatusFor({ exitReason: 'timeout', exitCode: null, signal: 'SIGKILL', durationMs: 5000 });
    assert.equal(status.code, 124);
    assert.match(status.message ?? '', /timed out after 5000 ms/);
  });

  test('out of memory exits 137 and says so', () => {
    const status = exitStatusFor({ exitReason: 'oom', exitCode: null, signal: 'SIGKILL' });
    assert.equal(status.code, 137);
    assert.match(status.message ?? '', /out of memory/);
  });

  test('killed or signaled exits 128 + the signal number', () => {
    assert.equal(exitStatusFor({ exitReason: 'killed', exitCode: null, signal: 'SIGKILL' }).code, 137);
    assert.equal(exitStatusFor({ exitReason: 'killed', exitCode: null, signal: 'SIGTERM' }).code, 143);
    assert.equal(exitStatusFor({ exitReason: 'killed', exitCode: null, signal: 'SIGINT' }).code, 130);
    assert.equal(exitStatusFor({ exitReason: 'signaled', exitCode: null, signal: 'SIGSEGV' }).code, 139);
  });

  test('a kill without a signal name counts as SIGKILL', () => {
    assert.equal(exitStatusFor({ exitReason: 'killed', exitCode: null, signal: null }).code, 137);
  });

  test('an interrupted execution exits 1 with a reason', () => {
    const status = exitStatusFor({ exitReason: null, exitCode: null, signal: null, status: 'interrupted' });
    assert.equal(status.code, 1);
    assert.match(status.message ?? '', /interrupted/);
  });
});

describe('signalNumber', () => {
  test('maps names to numbers and unknown names to SIGKILL', () => {
    assert.equal(signalNumber('SIGHUP'), 1);
    assert.equal(signalNumber('SIGTERM'), 15);
    assert.equal(signalNumber('SIGNOTREAL'), 9);
  });
});
