import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../usage-error.ts';
import { parseEnvVar, parseNonNegativeInteger, parsePositiveInteger, parsePositiveNumber, toRunTarget } from './run-args.ts';

describe('parseEnvVar (-e NAME=VALUE)', () => {
  test('collects repeated -e options into one object', () => {
    assert.deepEqual(parseEnvVar('B=2', parseEnvVar('A=1', undefined)), { A: '1', B: '2' });
  });

  test('splits at the first "=" so values may contain "="', () => {
    assert.deepEqual(parseEnvVar('URL=a=b&c=d'), { URL: 'a=b&c=d' });
  });

  test('accepts an empty value', () => {
    assert.deepEqual(parseEnvVar('EMPTY='), { EMPTY: '' });
  });

  test('a later -e for the same name wins', () => {
    assert.deepEqual(parseEnvVar('A=2', { A: '1' }), { A: '2' });
  });

  test('rejects a word without "=" and a name a shell could not use', () => {
    assert.throws(() => parseEnvVar('NOEQUALS'), InvalidArgumentError);
    assert.throws(() => parseEnvVar('=value'), InvalidArgumentError);
    assert.throws(() => parseEnvVar('1ABC=x'), InvalidArgumentError);
    assert.throws(() => parseEnvVar('A-B=x'), InvalidArgumentError);
  });
});

describe('toRunTarget (the words after --)', () => {
  test('one word with spaces is a shell string', () => {
    assert.deepEqual(toRunTarget(['echo hi | tr a-z A-Z']), { code: 'echo hi | tr a-z A-Z' });
  });

  test('one word with a tab or newline is a shell string too', () => {
    assert.deepEqual(toRunTarget(['echo a;\necho b']), { code: 'echo a;\necho b' });
  });

  test('one word without spaces is an argv of one', () => {
    assert.deepEqual(toRunTarget(['date']), { command: ['date'] });
  });

  test('several words are an argv, even when one contains spaces', () => {
    assert.deepEqual(toRunTarget(['sh', '-c', 'echo out; exit 3']), { command: ['sh', '-c', 'echo out; exit 3'] });
  });

  test('no words is a usage error', () => {
    assert.throws(() => toRunTarget([]), UsageError);
  });
});

describe('number options', () => {
  test('positive integers accept whole numbers from 1', () => {
    assert.equal(parsePositiveInteger('1500'), 1500);
    for (const bad of ['0', '-1', '1.5', 'abc', '', '1e3']) assert.throws(() => parsePositiveInteger(bad), InvalidArgumentError, bad);
  });

  test('sequence numbers accept 0', () => {
    assert.equal(parseNonNegativeInteger('0'), 0);
    assert.throws(() => parseNonNegativeInteger('-1'), InvalidArgumentError);
  });

  test('CPU counts accept fractions above 0', () => {
    assert.equal(parsePositiveNumber('0.5'), 0.5);
    for (const bad of ['0', '-1', 'x', '', 'Infinity']) assert.throws(() => parsePositiveNumber(bad), InvalidArgumentError, bad);
  });
});
