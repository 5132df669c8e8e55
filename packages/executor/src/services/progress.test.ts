import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProgressLine } from './progress.ts';

describe('parseProgressLine', () => {
  it('reads a bare number as the progress, with no message', () => {
    const parsed = parseProgressLine('40');
    assert.deepEqual(parsed, { progress: 40 });
    assert.equal(Object.hasOwn(parsed!, 'message'), false);
  });

  it('reads a number followed by a space and a message', () => {
    assert.deepEqual(parseProgressLine('40 msg'), { progress: 40, message: 'msg' });
    assert.deepEqual(parseProgressLine('55 compiling two files'), { progress: 55, message: 'compiling two files' });
  });

  it('accepts a percent sign after the number', () => {
    assert.deepEqual(parseProgressLine('40%'), { progress: 40 });
    assert.deepEqual(parseProgressLine('40% half way'), { progress: 40, message: 'half way' });
  });

  it('clamps numbers above 100 to 100', () => {
    assert.deepEqual(parseProgressLine('150'), { progress: 100 });
    assert.deepEqual(parseProgressLine('100.5 over'), { progress: 100, message: 'over' });
  });

  it('clamps negative numbers to 0', () => {
    assert.deepEqual(parseProgressLine('-3'), { progress: 0 });
  });

  it('ignores lines that do not start with a number', () => {
    assert.equal(parseProgressLine('abc'), undefined);
    assert.equal(parseProgressLine('done 40'), undefined);
    assert.equal(parseProgressLine(''), undefined);
    assert.equal(parseProgressLine('   '), undefined);
  });

  it('accepts decimals and surrounding blanks, trimming the message', () => {
    assert.deepEqual(parseProgressLine('  7.5  done'), { progress: 7.5, message: 'done' });
    assert.deepEqual(parseProgressLine('7.5   '), { progress: 7.5 });
  });
});
