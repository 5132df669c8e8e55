import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ALL_ERROR_CODES, ERROR_STATUS, FaasError, isFaasError, parseErrorBody } from './index.ts';

const doc = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');

test('every error code is documented in docs/errors.md with its status', () => {
  for (const code of ALL_ERROR_CODES) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    assert.ok(row, `docs/errors.md has no row for ${code}`);
    const status = ERROR_STATUS[code];
    assert.ok(row.includes(status === 0 ? '| — |' : `| ${status} |`), `docs/errors.md gives ${code} another status than ${status}`);
  }
});

test('docs/errors.md lists no code the protocol does not define', () => {
  const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(documented.filter((c) => !(ALL_ERROR_CODES as readonly string[]).includes(c!)), []);
});

test('FaasError carries the mapped status and serialises to the wire error body', () => {
  const err = new FaasError('INSTANCE_NOT_FOUND', 'no instance x', { instance_id: 'x' });
  assert.equal(err.status, 404);
  assert.deepEqual(err.toBody(), { error: { code: 'INSTANCE_NOT_FOUND', message: 'no instance x', details: { instance_id: 'x' } } });
  assert.deepEqual(new FaasError('INTERNAL_ERROR', 'boom').toBody(), { error: { code: 'INTERNAL_ERROR', message: 'boom' } });
});

test('isFaasError recognises the shape, not just the class', () => {
  assert.ok(isFaasError(new FaasError('ID_CONFLICT', 'x')));
  assert.ok(isFaasError({ code: 'ID_CONFLICT', status: 409, message: 'x' }));
  assert.ok(!isFaasError({ code: 'NOT_A_CODE', status: 409, message: 'x' }));
  assert.ok(!isFaasError(new Error('x')));
  assert.ok(!isFaasError(null));
});

test('parseErrorBody accepts only the documented error shape', () => {
  assert.deepEqual(parseErrorBody({ error: { code: 'A', message: 'b' } }), { code: 'A', message: 'b' });
  assert.deepEqual(parseErrorBody({ error: { code: 'A', message: 'b', details: { x: 1 } } }), { code: 'A', message: 'b', details: { x: 1 } });
  assert.equal(parseErrorBody({ error: 'nope' }), undefined);
  assert.equal(parseErrorBody({ code: 'A', message: 'b' }), undefined);
  assert.equal(parseErrorBody('text'), undefined);
});
