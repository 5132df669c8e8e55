import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PrivateKeyFiles } from './private-key-files.ts';

const root = mkdtempSync(join(tmpdir(), 'faas-key-files-'));
after(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string): number => statSync(path).mode & 0o777;
const ID = 'key-0123456789abcdef';

test('directories are 0700 and files 0600 even under a permissive umask and over a wider existing dir', async () => {
  const old = process.umask(0);
  try {
    mkdirSync(join(root, 'a', 'ssh'), { recursive: true, mode: 0o777 });
    const files = await PrivateKeyFiles.open(join(root, 'a', 'ssh', 'keys'));
    await files.write(ID, 'secret\n');
    assert.equal(mode(join(root, 'a', 'ssh')), 0o700);
    assert.equal(mode(files.dir), 0o700);
    assert.equal(mode(join(files.dir, ID)), 0o600);
    assert.equal(await files.read(ID), 'secret\n');
  } finally {
    process.umask(old);
  }
});

test('write replaces atomically, remove erases, list names keys and sweeps away temp files', async () => {
  const files = await PrivateKeyFiles.open(join(root, 'b', 'ssh', 'keys'));
  await files.write(ID, 'one');
  await files.write(ID, 'two');
  assert.equal(await files.read(ID), 'two');
  writeFileSync(join(files.dir, `${ID}.abc.tmp`), 'half');
  assert.deepEqual(await files.list(), [ID]);
  assert.deepEqual(readdirSync(files.dir), [ID]);
  assert.equal(await files.remove(ID), true);
  assert.equal(await files.remove(ID), false);
  assert.equal(await files.read(ID), undefined);
});

test('ids that could name another path are refused', async () => {
  const files = await PrivateKeyFiles.open(join(root, 'c', 'ssh', 'keys'));
  await assert.rejects(files.write('../../etc/x', 'x'), RangeError);
  await assert.rejects(files.read('key-../x'), RangeError);
});
