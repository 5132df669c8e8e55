import type { Command } from 'commander';
import { registerSnapshotBranches } from './branches.ts';
import { registerSnapshotCreate } from './create.ts';
import { registerSnapshotDiff } from './diff.ts';
import { registerSnapshotGc } from './gc.ts';
import { registerSnapshotLineage } from './lineage.ts';
import { registerSnapshotLs } from './ls.ts';
import { registerSnapshotRestore } from './restore.ts';
import { registerSnapshotRm } from './rm.ts';
import { registerSnapshotShow } from './show.ts';
import { registerSnapshotVerify } from './verify.ts';

/** `faas snapshot <verb>`: one file per verb. */
export function registerSnapshotCommands(program: Command): void {
  const snapshot = program.command('snapshot').alias('snapshots').summary("snapshot instances' files and env, restore, compare");
  registerSnapshotCreate(snapshot);
  registerSnapshotLs(snapshot);
  registerSnapshotShow(snapshot);
  registerSnapshotRestore(snapshot);
  registerSnapshotDiff(snapshot);
  registerSnapshotLineage(snapshot);
  registerSnapshotBranches(snapshot);
  registerSnapshotRm(snapshot);
  registerSnapshotVerify(snapshot);
  registerSnapshotGc(snapshot);
}
