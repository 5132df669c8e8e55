import assert from 'node:assert/strict';
import { test } from 'node:test';
import { build } from 'esbuild';

test('the SDK bundles for browsers with no Node built-in module', async () => {
  const result = await build({
    entryPoints: [new URL('./index.ts', import.meta.url).pathname],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    metafile: true,
  });
  assert.deepEqual(result.errors, []);
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.some((p) => p.endsWith('faas-platform-client.ts')));
  assert.ok(!inputs.some((p) => p.startsWith('node:') || p.includes('node_modules/typebox')), `unexpected inputs: ${inputs.filter((p) => p.startsWith('node:') || p.includes('typebox')).join(', ')}`);
  const code = result.outputFiles[0]!.text;
  assert.doesNotMatch(code, /from\s*["']node:/);
  assert.ok(code.length < 200_000, `bundle is ${code.length} bytes`);
});
