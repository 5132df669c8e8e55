import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import pino from 'pino';
import { systemClock } from '../../util/clock.ts';
import { detectCgroupLayout } from '../cgroups/layout.ts';
import { runRuntimeConformance } from '../conformance.ts';
import { BwrapRuntime } from './bwrap-runtime.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'faas-rt-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

runRuntimeConformance('bwrap', async () => {
  const runtime = new BwrapRuntime({ dataDir, layout: detectCgroupLayout(), cgroupPrefix: `faas-conf-${process.pid}`, clock: systemClock, logger: pino({ level: 'silent' }) });
  await runtime.checkHost();
  return runtime;
});
