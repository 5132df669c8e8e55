import type { Command } from 'commander';
import { syncFiles, type SyncFilesResult, type SyncProgress } from '@faas/sdk/sync';
import { createClient } from '../../cli-context.ts';
import { UsageError } from '../../usage-error.ts';

interface SyncCommandOptions {
  dryRun?: boolean;
  checksum?: boolean;
  delete?: boolean;
  exclude: string[];
  include: string[];
  gitignore: boolean;
  times: boolean;
  json?: boolean;
}

export interface SyncEndpoint {
  instanceId?: string;
  path: string;
}

/** `INSTANCE:/abs/path` → remote; anything else is a local path. */
export function parseSyncEndpoint(arg: string): SyncEndpoint {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]*):(.*)$/.exec(arg);
  if (m === null) return { path: arg };
  if (!m[2]!.startsWith('/')) throw new UsageError(`${JSON.stringify(arg)}: the path inside the instance must be absolute (INSTANCE:/abs/path)`);
  return { instanceId: m[1]!, path: m[2]! };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function formatMb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1)} MB`;
}

/** The one-line summary: `copied N, updated N, deleted N, skipped N, X MB in Y ms`. */
export function formatSyncSummary(r: SyncFilesResult): string {
  const line = `copied ${r.filesCopied}, updated ${r.filesUpdated}, deleted ${r.filesDeleted}, skipped ${r.filesSkipped}, ${formatMb(r.bytesTransferred)} in ${Math.round(r.durationMs)} ms`;
  return r.dryRun ? `dry run: would have ${line.replace(/ in \d+ ms$/, '')}` : line;
}

function progressBar(p: SyncProgress, width = 30): string {
  const fraction = p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : p.filesTotal > 0 ? p.filesDone / p.filesTotal : 1;
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${p.filesDone}/${p.filesTotal} files ${formatMb(p.bytesDone)}/${formatMb(p.bytesTotal)}`;
}

/** `faas sync SRC DST`: one side is `INSTANCE:/abs/path`, the other a local directory. */
export function registerSyncCommand(program: Command): void {
  program
    .command('sync')
    .summary('sync a local directory with a directory inside an instance')
    .description('Sync SRC onto DST; exactly one of them is INSTANCE:/abs/path (upload when DST is remote, download when SRC is).\n.gitignore files are honoured and .git is never synced.')
    .argument('<src>', 'source: a local directory or INSTANCE:/abs/path')
    .argument('<dst>', 'destination: a local directory or INSTANCE:/abs/path')
    .option('-n, --dry-run', 'show what would change, change nothing')
    .option('-c, --checksum', 'compare files by content hash instead of size and mtime')
    .option('--delete', 'delete destination entries the source does not have (excluded ones are kept)')
    .option('--exclude <pattern>', 'gitignore-syntax pattern to leave out (repeatable)', collect, [])
    .option('--include <pattern>', 'sync only what matches (gitignore syntax, repeatable)', collect, [])
    .option('--no-gitignore', 'ignore .gitignore files')
    .option('--no-times', 'do not preserve modification times')
    .option('--json', 'print the result (with the plan) as JSON')
    .action(async (srcArg: string, dstArg: string, options: SyncCommandOptions, cmd: Command) => {
      const src = parseSyncEndpoint(srcArg);
      const dst = parseSyncEndpoint(dstArg);
      if ((src.instanceId === undefined) === (dst.instanceId === undefined)) {
        throw new UsageError('exactly one of SRC and DST must be INSTANCE:/abs/path');
      }
      const upload = dst.instanceId !== undefined;
      const remote = upload ? dst : src;
      const local = upload ? src : dst;
      const tty = process.stderr.isTTY === true && options.json !== true;
      let shown = false;
      const result = await syncFiles(createClient(cmd), remote.instanceId!, local.path, remote.path, {
        direction: upload ? 'upload' : 'download',
        dryRun: options.dryRun === true,
        checksumOnly: options.checksum === true,
        deleteUnmatched: options.delete === true,
        excludePatterns: options.exclude,
        includePatterns: options.include,
        useGitignore: options.gitignore,
        preserveTimestamps: options.times,
        ...(tty
          ? {
              onProgress: (p: SyncProgress) => {
                if (p.filesTotal === 0 && p.bytesTotal === 0) return;
                shown = true;
                process.stderr.write(`\r\x1b[2K${progressBar(p)}`);
              },
            }
          : {}),
      });
      if (shown) process.stderr.write('\r\x1b[2K');
      if (options.json === true) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        if (result.dryRun) {
          for (const s of result.plan.steps) if (s.action !== 'skip') process.stdout.write(`${s.action.padEnd(6)} ${s.path}${s.type === 'dir' ? '/' : ''} (${s.reason})\n`);
        }
        process.stdout.write(`${formatSyncSummary(result)}\n`);
        for (const s of result.skipped) process.stderr.write(`warning: skipped ${s.path}: ${s.reason}\n`);
      }
    });
}
