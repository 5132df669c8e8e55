/**
 * Builds (or reuses) the vm runtime's guest image and prints where it is.
 *
 * @example
 * node --import tsx packages/executor/src/runtime/vm/guest-image/main.ts [--cache-dir DIR] [--agent PATH]
 *
 * Defaults: cache dir `.faas/vm/images` (where `faas serve` on the default data dir looks), agent `../guest-agent/agent.py` next to this file.
 * Needs root (the image holds files owned by root and by uid 1000).
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isFaasError } from '@faas/protocol';
import { checkGuestImageHost, ensureGuestImage } from './build-guest-image.ts';

const { values } = parseArgs({
  options: {
    'cache-dir': { type: 'string', default: '.faas/vm/images' },
    agent: { type: 'string', default: fileURLToPath(new URL('../guest-agent/agent.py', import.meta.url)) },
  },
});

const missing = checkGuestImageHost();
if (missing.length > 0) {
  process.stderr.write(`faas vm image: missing system packages: ${missing.join(' ')} (apt-get install -y ${missing.join(' ')})\n`);
  process.exit(1);
}
const started = Date.now();
try {
  const image = await ensureGuestImage({ cacheDir: values['cache-dir'] as string, agentPath: values.agent as string });
  const size = (path: string) => `${(statSync(path).size / 1024 / 1024).toFixed(1)} MiB`;
  process.stdout.write(
    [
      `id:          ${image.id}`,
      `kernel:      ${image.kernel} (${image.kernelVersion}, ${size(image.kernel)})`,
      `initrd:      ${image.initrd} (${size(image.initrd)})`,
      `system disk: ${image.systemDisk} (${size(image.systemDisk)})`,
      `skeleton:    ${image.skeleton}`,
      `time:        ${Date.now() - started} ms`,
      '',
    ].join('\n'),
  );
} catch (err) {
  process.stderr.write(`faas vm image: ${isFaasError(err) ? err.message : String(err)}\n`);
  process.exit(1);
}
