import type { Command } from 'commander';
import { parseNonNegativeInteger } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { formatGc } from '../../output/snapshot-format.ts';

/** `faas snapshot gc [--grace-ms N]`: removes what no snapshot references. */
export function registerSnapshotGc(snapshot: Command): void {
  snapshot
    .command('gc')
    .summary('remove blobs and trees no snapshot references')
    .option('--grace-ms <ms>', 'keep unreferenced blobs younger than this (server default 600000)', parseNonNegativeInteger)
    .option('--json', 'print the result as JSON')
    .action(async (options: { graceMs?: number; json?: boolean }, cmd: Command) => {
      const result = await createClient(cmd).gcSnapshots({ graceMs: options.graceMs });
      process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatGc(result));
    });
}
