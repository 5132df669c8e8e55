import { Option, type Command } from 'commander';
import type { SnapshotTarget } from '@faas/sdk';
import { parseMetadata } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';

interface CreateOptions {
  meta?: Record<string, string>;
  live?: boolean;
  instance?: boolean;
  execution?: boolean;
  json?: boolean;
}

/** `faas snapshot create INSTANCE_OR_EXECUTION`: prints the new snapshot's id (or it, with --json). */
export function registerSnapshotCreate(snapshot: Command): void {
  snapshot
    .command('create')
    .summary("snapshot an instance's files and env and print the snapshot id")
    .description(
      "Snapshot an instance's files and env and print the snapshot's id. The argument is an instance, " +
        'or an execution (for the instance it ran in): an id starting with exec- is looked up as an ' +
        'execution first, anything else as an instance first, then as the other kind; --instance or ' +
        '--execution says which it is. The instance is frozen while it is read unless --live.',
    )
    .argument('<instance-or-execution>', 'instance id, or execution id')
    .option('--meta <KEY=VALUE>', 'label for the snapshot (repeatable)', parseMetadata)
    .option('--live', 'do not freeze the instance: processes keep running, files written meanwhile may be caught half way')
    .addOption(new Option('--instance', 'the argument is an instance id').conflicts('execution'))
    .option('--execution', 'the argument is an execution id')
    .option('--json', 'print the snapshot as JSON instead of its id')
    .action(async (id: string, options: CreateOptions, cmd: Command) => {
      const target: SnapshotTarget = options.execution ? { executionId: id } : options.instance ? { instanceId: id } : id;
      const created = await createClient(cmd).createSnapshot(target, options.meta, options.live ? { deterministic: false } : {});
      process.stdout.write(options.json ? `${JSON.stringify(created, null, 2)}\n` : `${created.id}\n`);
    });
}
