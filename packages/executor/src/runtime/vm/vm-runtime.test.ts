import { after } from 'node:test';
import { runRuntimeConformance } from '../conformance.ts';
import { openTestVmRuntime } from './vm-test-fixture.ts';

const disposers: Array<() => Promise<void>> = [];
after(async () => {
  for (const dispose of disposers) await dispose();
});

runRuntimeConformance('vm', async () => {
  const { runtime, dispose } = await openTestVmRuntime();
  disposers.push(dispose);
  return runtime;
  // A connection crosses the agent's channel and the emulated guest's TCP stack: milliseconds.
}, { connectP50Ms: 50 });
