import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { computeIdentity, EnvironmentCatalog, environmentIdentity, parseVersion } from './environment-catalog.ts';

test('parseVersion takes the first dotted version', () => {
  assert.equal(parseVersion('Python 3.11.2\n'), '3.11.2');
  assert.equal(parseVersion('v20.1.0\n'), '20.1.0');
  assert.equal(parseVersion('This is perl 5, version 36, subversion 0 (v5.36.0) built for x86_64'), '5.36.0');
  assert.equal(parseVersion('GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)'), '5.2.15');
  assert.equal(parseVersion('jq-1.6'), '1.6');
  assert.equal(parseVersion('no version here'), null);
});

test('identity: 64 hex, stable, and changes with the base tree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'faas-env-id-'));
  try {
    writeFileSync(join(dir, 'a'), 'one');
    const first = computeIdentity('bwrap', 'x', dir);
    assert.match(first, /^[0-9a-f]{64}$/);
    assert.equal(computeIdentity('bwrap', 'x', dir), first);
    writeFileSync(join(dir, 'a'), 'two');
    assert.notEqual(computeIdentity('bwrap', 'x', dir), first);
    assert.notEqual(computeIdentity('bwrap', 'y', dir), computeIdentity('bwrap', 'x', dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the catalog lists the host tools with versions and exports identities', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'faas-env-cat-'));
  try {
    const catalog = new EnvironmentCatalog({ runtime: { name: 'bwrap', environments: ['host'], environmentRoot: () => dir }, logger: pino({ level: 'silent' }) });
    catalog.init();
    assert.equal(environmentIdentity('host'), catalog.identity('host'));
    assert.throws(() => environmentIdentity('nope'));
    const [host] = await catalog.list();
    const sh = host!.contains.find((t) => t.name === 'sh');
    assert.ok(sh, 'sh found');
    const python = host!.contains.find((t) => t.name === 'python3');
    if (python) assert.match(python.version ?? '', /^3\.\d+/);
    await catalog.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
