/**
 * Carries out a {@link SyncPlan} on a {@link SyncDestination}.
 *
 * Order: the plan's deletes one after the other (deepest first), then the other steps in plan
 * order: a directory is created (and awaited) before anything below it; file and symlink
 * steps run up to `concurrency` (8) at once. Last, directory attributes are set deepest
 * first: the mode and mtime of every directory the plan copies or updates, and the mtime of
 * every source directory whose content changed (writing in a directory changes its mtime),
 * so an unchanged tree plans nothing on the next run. New directories are created with at
 * least u+rwx so their content can be written, and get their real mode in that last pass.
 *
 * Counts: every step counts once, whatever its type (directories and symlinks included):
 * `filesCopied` = copy steps, `filesUpdated` = update steps, `filesDeleted` = delete steps,
 * `filesSkipped` = skip steps, so their sum is the number of steps. `bytesTransferred` is the
 * content bytes written (in a dry run: the bytes the plan says would be, so a dry run reports
 * exactly what the real run would).
 *
 * Progress: `filesDone`/`filesTotal` count the steps that do something (not skips),
 * `bytesDone`/`bytesTotal` content bytes; reported at most every 50 ms while running, and
 * once at the end.
 */
import { FaasError } from '../errors/index.ts';
import { comparePaths, parentOf } from './paths.ts';
import { isAttributeOnly } from './plan.ts';
import type { ManifestEntry, PlanStep, SyncDestination, SyncOptions, SyncPlan, SyncProgress, SyncResult } from './types.ts';

/** Where the content and attributes of the plan's source entries come from. */
export interface SyncSource {
  /**
   * The content of the source file `path`, in chunks. A chunk is valid until the next one is
   * requested (a source may reuse its buffers): a consumer that keeps chunks copies them.
   */
  open(path: string): AsyncIterable<Uint8Array>;
  /** The source manifest entry of `path` (every copy/update/skip path of the plan has one). */
  entry(path: string): ManifestEntry;
  /**
   * A source on this host: the absolute path of file `path`, checked to stay inside the source
   * root. With a destination that has `copyLocalFile`, content is copied in the kernel.
   */
  localPath?(path: string): string;
}

export interface ApplyOptions extends SyncOptions {
  /** File and symlink steps run at once. @default 8 */
  concurrency?: number;
  /** Minimum interval between progress reports, ms. @default 50 */
  progressIntervalMs?: number;
}

/** The result counts a plan implies (bytes as planned). */
export function countPlan(plan: SyncPlan): Omit<SyncResult, 'durationMs' | 'dryRun' | 'plan'> {
  const r = { filesCopied: 0, filesUpdated: 0, filesDeleted: 0, filesSkipped: 0, bytesTransferred: 0 };
  for (const s of plan.steps) {
    if (s.action === 'copy') r.filesCopied++;
    else if (s.action === 'update') r.filesUpdated++;
    else if (s.action === 'delete') r.filesDeleted++;
    else r.filesSkipped++;
    r.bytesTransferred += s.bytes;
  }
  return r;
}

/**
 * Applies `plan`; with `options.dryRun` touches nothing and returns the plan.
 *
 * @example
 * const result = await applyPlan(plan, source, new LocalDestination('/dst'), options, (p) => console.log(p.bytesDone));
 */
export async function applyPlan(
  plan: SyncPlan,
  source: SyncSource,
  dest: SyncDestination,
  options: ApplyOptions = {},
  onProgress?: (progress: SyncProgress) => void,
): Promise<SyncResult> {
  const started = performance.now();
  const counts = countPlan(plan);
  if (options.dryRun === true) {
    return { ...counts, durationMs: performance.now() - started, dryRun: true, plan };
  }
  const preserve = options.preserveTimestamps !== false;
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new FaasError('VALIDATION_FAILED', `applyPlan: concurrency must be a positive integer, not ${concurrency}`, { concurrency });
  }
  const interval = options.progressIntervalMs ?? 50;

  const progress: SyncProgress = { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 };
  for (const s of plan.steps) {
    if (s.action === 'skip') continue;
    progress.filesTotal++;
    progress.bytesTotal += s.bytes;
  }
  let lastReport = -Infinity;
  const report = (path: string | undefined, force: boolean): void => {
    if (!onProgress) return;
    const now = performance.now();
    if (!force && now - lastReport < interval) return;
    lastReport = now;
    const p: SyncProgress = { ...progress };
    if (path !== undefined) p.path = path;
    onProgress(p);
  };

  let bytesWritten = 0;
  const counted = async function* (path: string): AsyncIterable<Uint8Array> {
    for await (const chunk of source.open(path)) {
      yield chunk;
      bytesWritten += chunk.length;
      progress.bytesDone += chunk.length;
      report(path, false);
    }
  };

  const done = (step: PlanStep): void => {
    progress.filesDone++;
    report(step.path, false);
  };

  // Source directories whose attributes to set at the end: true = mode too.
  const dirAttrs = new Map<string, boolean>();
  const sourceDirs = new Set<string>();
  for (const s of plan.steps) if (s.action !== 'delete' && s.type === 'dir') sourceDirs.add(s.path);
  const touched = (path: string): void => {
    const parent = parentOf(path);
    if (parent !== '' && sourceDirs.has(parent) && !dirAttrs.has(parent)) dirAttrs.set(parent, false);
  };

  // Both ends on this host: the kernel copies (copy_file_range), no bytes pass through here.
  const copyLocal = source.localPath !== undefined && dest.copyLocalFile !== undefined;
  const copyLocalFile = async (path: string, e: ManifestEntry): Promise<void> => {
    let seen = 0;
    const advance = (bytes: number): void => {
      if (bytes <= seen) return;
      progress.bytesDone += bytes - seen;
      seen = bytes;
      report(path, false);
    };
    const bytes = await dest.copyLocalFile!(path, source.localPath!(path), e.mode, preserve ? e.mtimeNs : undefined, onProgress ? { onBytes: advance, intervalMs: interval } : undefined);
    // Progress never goes back, even for a source that shrank while it was copied.
    if (bytes > seen) progress.bytesDone += bytes - seen;
    bytesWritten += bytes;
  };

  const runStep = async (step: PlanStep): Promise<void> => {
    if (step.type === 'file') {
      const e = source.entry(step.path);
      if (isAttributeOnly(step)) await dest.setAttributes(step.path, e.mode, preserve ? e.mtimeNs : undefined);
      else if (copyLocal) await copyLocalFile(step.path, e);
      else await dest.writeFile(step.path, counted(step.path), e.mode, preserve ? e.mtimeNs : undefined);
    } else {
      const e = source.entry(step.path);
      if (step.reason !== 'mtime' || step.action === 'copy') await dest.symlink(step.path, e.target ?? '');
      if (preserve) await dest.setAttributes(step.path, undefined, e.mtimeNs);
    }
    done(step);
  };

  for (const step of plan.steps) {
    if (step.action !== 'delete') continue;
    await dest.remove(step.path);
    touched(step.path);
    done(step);
  }

  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  for (const step of plan.steps) {
    if (failure) break;
    if (step.action === 'delete' || step.action === 'skip') continue;
    touched(step.path);
    if (step.type === 'dir') {
      if (step.action === 'copy') await dest.mkdir(step.path, source.entry(step.path).mode | 0o700);
      dirAttrs.set(step.path, true);
      done(step);
      continue;
    }
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (failure) break;
    const p: Promise<void> = runStep(step).then(
      () => {
        inFlight.delete(p);
      },
      (error: unknown) => {
        inFlight.delete(p);
        failure ??= { error };
      },
    );
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  if (failure) throw failure.error;

  const dirs = [...dirAttrs.keys()].sort((a, b) => comparePaths(b, a));
  for (const path of dirs) {
    const e = source.entry(path);
    const withMode = dirAttrs.get(path) === true;
    if (!withMode && !preserve) continue;
    await dest.setAttributes(path, withMode ? e.mode : undefined, preserve ? e.mtimeNs : undefined);
  }

  report(undefined, true);
  return { ...counts, bytesTransferred: bytesWritten, durationMs: performance.now() - started, dryRun: false };
}
