import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatAge, formatTable } from './table.ts';

describe('formatTable', () => {
  test('pads every column but the last to its widest cell', () => {
    assert.equal(formatTable(['ID', 'STATE'], [['inst-1', 'running'], ['i', 'deleted']]), 'ID      STATE\ninst-1  running\ni       deleted\n');
  });

  test('prints just the header for no rows', () => {
    assert.equal(formatTable(['ID', 'STATE'], []), 'ID  STATE\n');
  });
});

describe('formatAge', () => {
  test('picks the largest whole unit', () => {
    const now = new Date('2026-12-04T12:00:00Z');
    const ago = (ms: number): string => formatAge(new Date(now.getTime() - ms), now);
    assert.equal(ago(5_000), '5s ago');
    assert.equal(ago(90_000), '1m ago');
    assert.equal(ago(3 * 3_600_000), '3h ago');
    assert.equal(ago(2 * 86_400_000), '2d ago');
  });

  test('a clock skewed into the future reads 0s, not a negative age', () => {
    const now = new Date('2026-12-04T12:00:00Z');
    assert.equal(formatAge(new Date(now.getTime() + 5_000), now), '0s ago');
  });
});
