/**
 * `npm run bench [-- <section>]`: runs the benchmarks in order (or the one named), each figure
 * beside a baseline measured in the same run. Needs root (like the executor itself).
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, release } from 'node:os';
import { detectCgroupLayout } from '../packages/executor/src/runtime/cgroups/layout.ts';
import { coldStart } from './cold-start.ts';
import { httpExecute } from './http-execute.ts';
import { mainThread } from './main-thread.ts';
import { modes } from './modes.ts';
import { ports } from './ports.ts';
import { readiness } from './readiness.ts';
import { snapshotHash } from './snapshot-hash.ts';
import { snapshots } from './snapshots.ts';
import { sshKeys } from './ssh-keys.ts';
import { sshBench } from './ssh.ts';
import { sessions } from './sessions.ts';
import { sync } from './sync.ts';
import { throughput } from './throughput.ts';
import { vm } from './vm.ts';

const SECTIONS: Record<string, () => Promise<void>> = {
  'cold-start': coldStart,
  'http-execute': httpExecute,
  throughput,
  'main-thread': mainThread,
  'snapshot-hash': snapshotHash,
  snapshots,
  modes,
  sync,
  'ssh-keys': sshKeys,
  ssh: sshBench,
  readiness,
  ports,
  sessions,
  vm,
};
/** Run when no section is named; the others are opt-in diagnostics. */
const DEFAULT = ['cold-start', 'http-execute', 'throughput', 'snapshot-hash', 'snapshots', 'modes', 'sync', 'ssh-keys', 'ssh', 'readiness', 'ports', 'sessions', 'vm'];

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'n/a';
  }
}

async function main(): Promise<number> {
  const wanted = process.argv[2];
  if (wanted !== undefined && !(wanted in SECTIONS)) {
    console.error(`unknown section ${JSON.stringify(wanted)}; one of: ${Object.keys(SECTIONS).join(', ')}`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    console.error('the benchmarks run the bwrap runtime, which needs root (it mounts overlays and manages cgroups)');
    return 1;
  }
  const names = wanted === undefined ? DEFAULT : [wanted];
  console.log('faas benchmarks');
  console.log(`  date:     ${new Date().toISOString()}`);
  console.log(`  command:  npm run bench${wanted ? ` -- ${wanted}` : ''}${process.env.BENCH_N ? ` (BENCH_N=${process.env.BENCH_N})` : ''}`);
  console.log(`  node:     ${process.version}`);
  console.log(`  nproc:    ${tryRun('nproc', [])} (node sees ${availableParallelism()}; ${cpus()[0]?.model ?? 'unknown cpu'})`);
  console.log(`  kernel:   ${release()}`);
  console.log(`  bwrap:    ${tryRun('bwrap', ['--version'])}`);
  console.log(`  cgroups:  ${(() => { try { return detectCgroupLayout().describe(); } catch { return 'n/a'; } })()}`);
  console.log('  Absolute times drift on a shared machine: compare each figure with its baseline from the same run.');
  for (const name of names) await SECTIONS[name]!();
  console.log('');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
