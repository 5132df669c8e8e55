import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../usage-error.ts';
import { streamsLive, toModeFields } from './mode-options.ts';

describe('toModeFields', () => {
  test('a mode option implies its mode', () => {
    assert.deepEqual(toModeFields({}), {});
    assert.deepEqual(toModeFields({ branchFrom: 'snap-1' }), { mode: 'branched', branchFrom: 'snap-1' });
    assert.deepEqual(toModeFields({ cacheKey: 'k', cacheFailures: true }), { mode: 'cached', cacheKey: 'k', cacheFailures: true });
    assert.deepEqual(toModeFields({ checkpoint: 'snap-2' }), { mode: 'checkpointed', checkpoint: 'snap-2' });
    assert.deepEqual(toModeFields({ function: 'fn' }), { mode: 'persistent', functionId: 'fn' });
    assert.deepEqual(toModeFields({ instance: 'inst-1' }), { mode: 'persistent', instanceId: 'inst-1' });
    assert.deepEqual(toModeFields({ mode: 'checkpointed' }), { mode: 'checkpointed' });
  });

  test('options of another mode are a usage error', () => {
    assert.throws(() => toModeFields({ mode: 'ephemeral', cacheKey: 'k' }), UsageError);
    assert.throws(() => toModeFields({ checkpoint: 'a', branchFrom: 'b' }), /--branch-from is an option of mode branched, not checkpointed/);
  });

  test('ephemeral and persistent stream live; the others answer in one piece', () => {
    assert.deepEqual([undefined, 'ephemeral', 'persistent', 'cached', 'checkpointed', 'branched'].map((m) => streamsLive(m as never)), [true, true, true, false, false, false]);
  });
});
