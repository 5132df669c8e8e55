import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdPattern } from '@faas/protocol/wire';
import { generateExecutionId } from './execution-id.ts';

test('generated execution ids are "exec-" + 16 base32 chars and pass the server id pattern', () => {
  const pattern = new RegExp(IdPattern);
  for (let i = 0; i < 200; i++) {
    const id = generateExecutionId();
    assert.match(id, /^exec-[a-z2-7]{16}$/);
    assert.match(id, pattern);
  }
});

test('generated execution ids do not repeat', () => {
  const ids = new Set(Array.from({ length: 10_000 }, () => generateExecutionId()));
  assert.equal(ids.size, 10_000);
});
