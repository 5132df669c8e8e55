import type { Command } from 'commander';
import { parseMetadata, parsePositiveInteger, parsePositiveNumber } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';

interface RestoreOptions {
  id?: string;
  meta?: Record<string, string>;
  memory?: number;
  cpus?: number;
  pids?: number;
  json?: boolean;
}

/** `faas snapshot restore REF [--id ID]`: prints the new instance's id (or it, with --json). */
export function registerSnapshotRestore(snapshot: Command): void {
  snapshot
    .command('restore')
    .summary("start a new instance with a snapshot's files and env and print its id")
    .argument('<ref>', 'snapshot id (snap-...) or content hash')
    .option('--id <id>', 'id of the new instance (3-63 chars of a-z, 0-9, "-")')
    .option('--meta <KEY=VALUE>', 'label for the new instance (repeatable)', parseMetadata)
    .option('--memory <mb>', 'memory limit in MiB', parsePositiveInteger)
    .option('--cpus <n>', 'CPU quota in cores, e.g. 0.5', parsePositiveNumber)
    .option('--pids <n>', 'maximum number of processes and threads', parsePositiveInteger)
    .option('--json', 'print the instance as JSON instead of its id')
    .action(async (ref: string, options: RestoreOptions, cmd: Command) => {
      const instance = await createClient(cmd).restoreSnapshot(ref, {
        id: options.id,
        metadata: options.meta,
        limits: { memoryMb: options.memory, cpuCores: options.cpus, pidsMax: options.pids },
      });
      process.stdout.write(options.json ? `${JSON.stringify(instance, null, 2)}\n` : `${instance.id}\n`);
    });
}
