import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { readStdin, toExecRequest } from './run-options.ts';

describe('toExecRequest', () => {
  test('maps the options to camelCase request fields and leaves unset ones out', async () => {
    const request = await toExecRequest(['sh', '-c', 'echo $A'], { envVar: { A: '1' }, timeout: 500, workdir: '/tmp' });
    assert.deepEqual(request, { command: ['sh', '-c', 'echo $A'], envVars: { A: '1' }, timeoutMs: 500, workingDir: '/tmp' });
  });

  test('a single word with spaces becomes code', async () => {
    assert.deepEqual(await toExecRequest(['echo hi | tr a-z A-Z'], {}), { code: 'echo hi | tr a-z A-Z' });
  });

  test('--stdin sends all of standard input; without it stdin is not read', async () => {
    let reads = 0;
    const stdin = async (): Promise<string> => {
      reads++;
      return 'line 1\nline 2\n';
    };
    assert.equal((await toExecRequest(['cat'], { stdin: true }, stdin)).stdin, 'line 1\nline 2\n');
    assert.equal((await toExecRequest(['cat'], {}, stdin)).stdin, undefined);
    assert.equal(reads, 1);
  });
});

describe('readStdin', () => {
  test('joins chunks, including a UTF-8 character split between them', async () => {
    const bytes = Buffer.from('héllo');
    assert.equal(await readStdin(Readable.from([bytes.subarray(0, 2), bytes.subarray(2)])), 'héllo');
  });
});
