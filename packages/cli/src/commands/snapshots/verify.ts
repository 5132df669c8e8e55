import type { Command } from 'commander';
import { createClient, EXIT_FAILURE } from '../../cli-context.ts';
import { formatVerify, verifyProblems } from '../../output/snapshot-format.ts';

/** `faas snapshot verify`: re-hashes the store; exits 1 when anything is corrupt or missing. */
export function registerSnapshotVerify(snapshot: Command): void {
  snapshot
    .command('verify')
    .summary('re-hash every blob and check every snapshot is complete')
    .description('Re-hash every blob in the store and check every snapshot is complete. Lists each problem and exits 1 when there is any.')
    .option('--json', 'print the report as JSON')
    .action(async (options: { json?: boolean }, cmd: Command) => {
      const report = await createClient(cmd).verifySnapshots();
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatVerify(report));
      if (!report.ok) {
        const count = verifyProblems(report).length;
        process.stderr.write(`faas: the snapshot store has ${count} problem${count === 1 ? '' : 's'}\n`);
        process.exitCode = EXIT_FAILURE;
      }
    });
}
