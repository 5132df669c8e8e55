import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaasError } from '@faas/protocol';
import { checkWorkingDir, toArgv } from './command-line.ts';

const MAX_ARG_BYTES = 128 * 1024;

/** Asserts `fn` throws a FaasError with `code` (and, when given, a details.errors[0].path). */
function assertFaasError(fn: () => unknown, code: string, path?: string): FaasError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FaasError, `expected a FaasError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code);
  if (path !== undefined) {
    const errors = caught.details.errors as Array<{ path: string }>;
    assert.equal(errors[0]?.path, path);
  }
  return caught;
}

describe('toArgv', () => {
  it('refuses a request with both command and code (VALIDATION_FAILED, 400)', () => {
    const err = assertFaasError(() => toArgv({ command: ['echo'], code: 'echo' }), 'VALIDATION_FAILED', '/command');
    assert.equal(err.status, 400);
  });

  it('refuses a request with neither command nor code (VALIDATION_FAILED)', () => {
    assertFaasError(() => toArgv({}), 'VALIDATION_FAILED', '/command');
  });

  it('refuses a language given with a command (VALIDATION_FAILED at /language)', () => {
    assertFaasError(() => toArgv({ command: ['echo', 'hi'], language: 'python' }), 'VALIDATION_FAILED', '/language');
  });

  it('passes a command through unchanged', () => {
    assert.deepEqual(toArgv({ command: ['echo', 'a b', ''] }), ['echo', 'a b', '']);
  });

  it('maps code to its interpreter: sh by default, then sh, bash, python, node', () => {
    assert.deepEqual(toArgv({ code: 'echo hi' }), ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual(toArgv({ code: 'echo hi', language: 'sh' }), ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual(toArgv({ code: 'echo hi', language: 'bash' }), ['/bin/bash', '-c', 'echo hi']);
    assert.deepEqual(toArgv({ code: 'print(1)', language: 'python' }), ['python3', '-c', 'print(1)']);
    assert.deepEqual(toArgv({ code: 'console.log(1)', language: 'node' }), ['node', '-e', 'console.log(1)']);
  });

  it('refuses a program name containing "=" or an empty one (VALIDATION_FAILED at /command/0)', () => {
    assertFaasError(() => toArgv({ command: ['A=B', 'x'] }), 'VALIDATION_FAILED', '/command/0');
    assertFaasError(() => toArgv({ command: [''] }), 'VALIDATION_FAILED', '/command/0');
  });

  it('accepts "=" in arguments after the program', () => {
    assert.deepEqual(toArgv({ command: ['env', 'A=B'] }), ['env', 'A=B']);
  });

  it('refuses a NUL byte in any argument, naming its index', () => {
    assertFaasError(() => toArgv({ command: ['echo', 'ok', 'a\0b'] }), 'VALIDATION_FAILED', '/command/2');
    assertFaasError(() => toArgv({ command: ['ec\0ho'] }), 'VALIDATION_FAILED', '/command/0');
    assertFaasError(() => toArgv({ code: 'echo \0' }), 'VALIDATION_FAILED');
  });

  it('refuses an argument over 128 KiB (LIMIT_OUT_OF_RANGE naming argument_bytes) and accepts exactly 128 KiB', () => {
    assert.equal(toArgv({ command: ['echo', 'x'.repeat(MAX_ARG_BYTES)] })[1]!.length, MAX_ARG_BYTES);
    const err = assertFaasError(() => toArgv({ command: ['echo', 'x'.repeat(MAX_ARG_BYTES + 1)] }), 'LIMIT_OUT_OF_RANGE');
    assert.equal(err.status, 400);
    assert.equal(err.details.limit, 'argument_bytes');
    assert.equal(err.details.max, MAX_ARG_BYTES);
  });

  it('counts argument size in UTF-8 bytes, not characters', () => {
    // 65,537 characters, 131,074 bytes.
    assertFaasError(() => toArgv({ code: 'é'.repeat(MAX_ARG_BYTES / 2 + 1) }), 'LIMIT_OUT_OF_RANGE');
  });
});

describe('checkWorkingDir', () => {
  it('uses the fallback when no directory is given', () => {
    assert.equal(checkWorkingDir(undefined, '/workspace'), '/workspace');
  });

  it('accepts an absolute path', () => {
    assert.equal(checkWorkingDir('/tmp/work dir', '/workspace'), '/tmp/work dir');
  });

  it('refuses a relative path or an empty one (VALIDATION_FAILED at /working_dir)', () => {
    assertFaasError(() => checkWorkingDir('work', '/workspace'), 'VALIDATION_FAILED', '/working_dir');
    assertFaasError(() => checkWorkingDir('', '/workspace'), 'VALIDATION_FAILED', '/working_dir');
  });

  it('refuses a path with a NUL byte', () => {
    assertFaasError(() => checkWorkingDir('/tmp/\0x', '/workspace'), 'VALIDATION_FAILED', '/working_dir');
  });
});
