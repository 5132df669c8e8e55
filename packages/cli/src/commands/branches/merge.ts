import { InvalidArgumentError, type Command } from 'commander';
import { ErrorCode, isFaasError, mergeConflicts, type MergeConflict, type MergeStrategy } from '@faas/sdk';
import { parseMetadata } from '../../args/run-args.ts';
import { createClient, EXIT_FAILURE } from '../../cli-context.ts';

interface MergeCommandOptions {
  strategy?: MergeStrategy;
  snapshots?: boolean;
  meta?: Record<string, string>;
  json?: boolean;
}

/**
 * `--strategy fail|ours|theirs|prefer:REF`.
 *
 * @example
 * parseStrategy('prefer:exec-2b6x0q1f9s8d'); // { prefer: 'exec-2b6x0q1f9s8d' }
 */
export function parseStrategy(value: string): MergeStrategy {
  if (value === 'fail' || value === 'ours' || value === 'theirs') return value;
  if (value.startsWith('prefer:') && value.length > 'prefer:'.length) return { prefer: value.slice('prefer:'.length) };
  throw new InvalidArgumentError(`expected fail, ours, theirs or prefer:REF, got "${value}"`);
}

/** A snapshot id or a content hash, as opposed to an execution id. */
const SNAPSHOT_REF = /^(snap-[0-9a-z]{16}|[0-9a-f]{64})$/;

/**
 * `faas merge`'s conflict list: one block per path, each input's state indented under it.
 *
 * @example
 * formatConflicts([{ path: 'workspace/a', kind: 'content', sides: [{ snapshotId: 'snap-1', state: 'file' }] }]);
 * // "workspace/a (content)\n  snap-1  file\n"
 */
export function formatConflicts(conflicts: MergeConflict[]): string {
  return conflicts
    .map((c) => `${c.path} (${c.kind.replace('_', '/')})${c.winner ? ` -> ${c.winner}` : ''}\n${c.sides.map((side) => `  ${side.snapshotId}  ${side.state}\n`).join('')}`)
    .join('');
}

/** `faas merge REF REF... [--strategy S] [--snapshots]`: prints the merge snapshot's id, or the conflicts and exits 1. */
export function registerMergeCommand(program: Command): void {
  program
    .command('merge')
    .summary('three-way merge branches into a new snapshot and print its id')
    .description(
      'Merge two or more branches into a new snapshot and print its id. The refs are executions of ' +
        'branched (or checkpointed) runs; refs that all look like snapshots (snap-... or a content hash), ' +
        'or any refs with --snapshots, are snapshots. Paths the inputs changed differently are conflicts: ' +
        'with the default strategy "fail" they are listed, path by path, and faas exits 1 without writing ' +
        'anything; "ours" takes the first input\'s, "theirs" the last\'s, "prefer:REF" that input\'s.',
    )
    .argument('<refs...>', 'two or more execution ids (or snapshot ids / content hashes)')
    .option('--strategy <strategy>', 'fail (default), ours, theirs or prefer:REF', parseStrategy)
    .option('--snapshots', 'the refs are snapshots, not executions')
    .option('--meta <KEY=VALUE>', 'label for the merge snapshot (repeatable)', parseMetadata)
    .option('--json', 'print the merge result (or the conflicts) as JSON')
    .action(async (refs: string[], options: MergeCommandOptions, cmd: Command) => {
      const snapshots = options.snapshots || refs.every((ref) => SNAPSHOT_REF.test(ref));
      try {
        const merged = await createClient(cmd).mergeBranches(refs, { strategy: options.strategy, snapshots, metadata: options.meta });
        if (options.json) {
          process.stdout.write(`${JSON.stringify(merged, null, 2)}\n`);
          return;
        }
        process.stdout.write(`${merged.snapshot.id}\n`);
        if (merged.resolvedConflicts.length > 0) process.stderr.write(`faas: resolved ${merged.resolvedConflicts.length} conflict(s):\n${formatConflicts(merged.resolvedConflicts)}`);
      } catch (error) {
        const conflicts = mergeConflicts(error);
        if (!conflicts || !isFaasError(error) || error.code !== ErrorCode.MERGE_CONFLICT) throw error;
        process.stdout.write(options.json ? `${JSON.stringify({ conflicts, baseSnapshotId: error.details.base_snapshot_id }, null, 2)}\n` : formatConflicts(conflicts));
        process.stderr.write(`faas: ${conflicts.length} conflicting path${conflicts.length === 1 ? '' : 's'}; nothing was merged (--strategy ours|theirs|prefer:REF settles them)\n`);
        process.exitCode = EXIT_FAILURE;
      }
    });
}
