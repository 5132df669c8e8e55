import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { defaultConfig } from './config.ts';

describe('config: the runtime', () => {
  afterEach(() => {
    delete process.env.FAAS_RUNTIME;
  });

  it('is bwrap by default, vm from FAAS_RUNTIME, and an override wins over the environment', () => {
    assert.equal(defaultConfig().runtime, 'bwrap');
    process.env.FAAS_RUNTIME = 'vm';
    assert.equal(defaultConfig().runtime, 'vm');
    assert.equal(defaultConfig({ runtime: 'bwrap' }).runtime, 'bwrap');
  });

  it('refuses an unknown FAAS_RUNTIME, naming the choices, instead of falling back', () => {
    process.env.FAAS_RUNTIME = 'docker';
    assert.throws(() => defaultConfig(), /FAAS_RUNTIME must be one of bwrap, vm, got "docker"/);
  });
});
