import { Option, type Command } from 'commander';
import type { Instance, InstanceState } from '@faas/sdk';
import { parsePositiveInteger } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { formatAge, formatTable } from '../../output/table.ts';

interface LsOptions {
  json?: boolean;
  state?: InstanceState;
  limit?: number;
}

/** One table row: id, state, env, age, limits. */
export function instanceRow(instance: Instance, now = new Date()): string[] {
  const { memoryMb, cpuCores, pidsMax } = instance.limits;
  return [instance.id, instance.state, instance.env, formatAge(instance.createdAt, now), `${memoryMb}MiB ${cpuCores}cpu ${pidsMax}pids`];
}

/** `faas instances ls [--json]`. */
export function registerInstancesLs(instances: Command): void {
  instances
    .command('ls')
    .alias('list')
    .summary('list instances, newest first')
    .option('--json', 'print the instances as JSON')
    .addOption(new Option('--state <state>', 'only instances in this state (deleted ones are listed only when asked for)').choices(['starting', 'running', 'stopped', 'failed', 'deleted']))
    .option('--limit <n>', 'at most this many', parsePositiveInteger)
    .action(async (options: LsOptions, cmd: Command) => {
      const list = await createClient(cmd).instances.list({ state: options.state, limit: options.limit });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      process.stdout.write(formatTable(['ID', 'STATE', 'ENV', 'CREATED', 'LIMITS'], list.map((instance) => instanceRow(instance))));
    });
}
