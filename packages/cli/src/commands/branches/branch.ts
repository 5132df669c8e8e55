import type { Command } from 'commander';
import { parseMetadata, parsePositiveInteger } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';

interface BranchOptions {
  count?: number;
  meta?: Record<string, string>;
  json?: boolean;
}

/** `faas branch SNAPSHOT [-n N]`: prints the new instances' ids, one a line (or them, with --json). */
export function registerBranchCommand(program: Command): void {
  program
    .command('branch')
    .summary('start independent copy-on-write instances from a snapshot and print their ids')
    .description(
      'Start N independent instances from one snapshot (all or none), each with its files and env, ' +
        'and print their ids, one a line. `faas snapshot branches REF` lists them later.',
    )
    .argument('<snapshot>', 'snapshot id (snap-...) or content hash')
    .option('-n, --count <n>', 'how many instances (1-256)', parsePositiveInteger, 1)
    .option('--meta <KEY=VALUE>', 'label for every new instance (repeatable)', parseMetadata)
    .option('--json', 'print the instances as JSON instead of their ids')
    .action(async (snapshotRef: string, options: BranchOptions, cmd: Command) => {
      const branches = await createClient(cmd).createBranch(snapshotRef, { count: options.count, metadata: options.meta });
      process.stdout.write(options.json ? `${JSON.stringify(branches, null, 2)}\n` : branches.map((instance) => `${instance.id}\n`).join(''));
    });
}
