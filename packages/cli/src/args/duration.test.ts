import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { parseDuration } from './duration.ts';

test('parseDuration reads plain milliseconds and ms/s/m/h/d units', () => {
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('250'), 250);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('30d'), 2_592_000_000);
});

test('parseDuration refuses negative, unitless garbage and unknown units', () => {
  for (const bad of ['-1', '', 'soon', '10w', '1e3', '5 m']) assert.throws(() => parseDuration(bad), InvalidArgumentError, bad);
});
