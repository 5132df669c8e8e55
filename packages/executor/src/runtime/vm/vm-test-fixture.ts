import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { systemClock } from '../../util/clock.ts';
import { VmRuntime, type VmRuntimeOptions } from './vm-runtime.ts';

/**
 * Guest images depend only on the host's packages, so every test file shares one cache (the
 * first build takes a while; later ones reuse it).
 */
export const TEST_IMAGE_DIR = join(tmpdir(), 'faas-vm-images-test');

/** A checked vm runtime on a fresh data dir; `dispose` closes it and removes the dir. */
export async function openTestVmRuntime(options: Partial<VmRuntimeOptions> = {}): Promise<{ runtime: VmRuntime; dataDir: string; dispose(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'faas-vm-'));
  const runtime = new VmRuntime({ dataDir, clock: systemClock, logger: pino({ level: 'silent' }), imageDir: TEST_IMAGE_DIR, diskBytes: 1024 ** 3, ...options });
  await runtime.checkHost();
  return {
    runtime,
    dataDir,
    async dispose() {
      await runtime.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
