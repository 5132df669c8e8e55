import type { Command } from 'commander';
import { parsePositiveInteger } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { SNAPSHOT_TABLE_HEADERS, snapshotRow } from '../../output/snapshot-format.ts';
import { formatTable } from '../../output/table.ts';

interface LsOptions {
  parent?: string;
  instance?: string;
  limit?: number;
  json?: boolean;
}

/** `faas snapshot ls [--parent REF] [--instance ID]`: a table, newest first. */
export function registerSnapshotLs(snapshot: Command): void {
  snapshot
    .command('ls')
    .alias('list')
    .summary('list snapshots, newest first')
    .option('--parent <ref>', 'only the children of this snapshot (id or content hash); "none" lists roots')
    .option('--instance <id>', 'only snapshots taken of this instance')
    .option('--limit <n>', 'at most this many', parsePositiveInteger)
    .option('--json', 'print the snapshots as JSON')
    .action(async (options: LsOptions, cmd: Command) => {
      const list = await createClient(cmd).listSnapshots({ parentId: options.parent, instanceId: options.instance, limit: options.limit });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      process.stdout.write(formatTable(SNAPSHOT_TABLE_HEADERS, list.map((item) => snapshotRow(item))));
    });
}
