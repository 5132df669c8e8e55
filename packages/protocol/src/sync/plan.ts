/**
 * Compares a source manifest with a destination manifest and says what to do with each path.
 *
 * Order (deterministic: it depends only on the manifests and the options):
 * 1. every `delete`, deepest first (reverse UTF-8 byte order of the paths, so a directory's
 *    content comes before it): destination entries the source lacks (with `deleteUnmatched`,
 *    or always when they lie under a directory that the source replaces by a non-directory),
 *    and destination entries whose type changes between directory and non-directory;
 * 2. every other step in UTF-8 byte order of the paths, so a directory is created before its
 *    content (and a directory that step 1 deleted for a type change is created again).
 *
 * Files are compared, in this order:
 * - type (file ↔ symlink: `update` 'type'; directory ↔ other: `delete` + `copy`, both 'type');
 * - when `sameContent` (a byte comparison the caller made: FileSynchronizer's checksum mode)
 *   has the path, or else both entries carry a `checksum` (XXH3-128: checksum mode over the
 *   wire), or else both carry a `hash` (SHA-256: a caller had them): sizes ('size'), then that
 *   comparison, checksum or hash ('content'); equal content with another mode or mtime is an attribute update that
 *   transfers nothing (reason 'mode' or 'mtime', bytes 0). Which one decides depends only on
 *   `sameContent` and the fields the two entries carry, never on `options.checksumOnly`;
 * - otherwise (quick check, as rsync): size ('size'), then mtime ('mtime', transferred);
 *   in checksum mode a file without a checksum (or hash) on either side falls back to this;
 * - then mode ('mode', bytes 0).
 * Symlinks: target ('target'), then mtime; directories: mode, then mtime (both bytes 0).
 *
 * Mtimes are compared at microsecond granularity: Node can set times only as a double number
 * of seconds, which libuv truncates to microseconds, so a destination never holds the
 * source's nanoseconds (see local-destination.ts). With `preserveTimestamps: false`
 * destination mtimes are write times: a file is then transferred when the source's mtime is
 * newer than the destination's (or the size or content differs), and an mtime difference
 * alone never makes an update.
 */
import { comparePaths, parentOf } from './paths.ts';
import type { ManifestEntry, PlanStep, SyncOptions, SyncPlan } from './types.ts';

/** The microseconds of a nanosecond mtime string. */
export function mtimeUs(mtimeNs: string): bigint {
  return BigInt(mtimeNs) / 1000n;
}

function isDirChange(a: ManifestEntry, b: ManifestEntry): boolean {
  return a.type !== b.type && (a.type === 'dir' || b.type === 'dir');
}

function fileBytes(e: ManifestEntry): number {
  return e.type === 'file' ? e.size : 0;
}

function withHash(step: PlanStep, e: ManifestEntry): PlanStep {
  if (e.type === 'file' && e.hash !== undefined) step.hash = e.hash;
  return step;
}

/**
 * True when a file `update` step changes only attributes (mode, mtime): nothing to transfer.
 */
export function isAttributeOnly(step: PlanStep): boolean {
  return step.action === 'update' && step.bytes === 0 && (step.reason === 'mode' || step.reason === 'mtime');
}

/**
 * Plans the sync of `source` onto `dest` (both as `buildManifest` returns them: sorted,
 * filtered with the same options).
 *
 * @param sameContent path → whether the source and destination files hold the same bytes, for
 *   paths whose contents the caller compared itself (it takes precedence over checksums).
 *
 * @example
 * const plan = planSync(src.entries, dst.entries, { deleteUnmatched: true });
 * for (const s of plan.steps) console.log(s.action, s.path, s.reason);
 */
export function planSync(source: readonly ManifestEntry[], dest: readonly ManifestEntry[], options: SyncOptions = {}, sameContent?: ReadonlyMap<string, boolean>): SyncPlan {
  const known = sameContent ?? new Map<string, boolean>();
  const preserve = options.preserveTimestamps !== false;
  const src = new Map<string, ManifestEntry>();
  for (const e of source) src.set(e.path, e);

  // Destination directories the source turns into something else: all their content goes.
  const replaced = new Set<string>();
  for (const d of dest) {
    const s = src.get(d.path);
    if (d.type === 'dir' && s !== undefined && s.type !== 'dir') replaced.add(d.path);
  }
  const underReplaced = (p: string): boolean => {
    if (replaced.size === 0) return false;
    for (let q = parentOf(p); q !== ''; q = parentOf(q)) if (replaced.has(q)) return true;
    return false;
  };

  const deletes: PlanStep[] = [];
  const deleted = new Set<string>();
  const sortedDest = [...dest].sort((a, b) => comparePaths(b.path, a.path));
  for (const d of sortedDest) {
    const s = src.get(d.path);
    if (s === undefined) {
      if (options.deleteUnmatched === true || underReplaced(d.path)) {
        deletes.push({ action: 'delete', path: d.path, type: d.type, reason: 'not_in_source', bytes: 0 });
        deleted.add(d.path);
      }
    } else if (isDirChange(s, d)) {
      deletes.push({ action: 'delete', path: d.path, type: d.type, reason: 'type', bytes: 0 });
      deleted.add(d.path);
    }
  }

  const dst = new Map<string, ManifestEntry>();
  for (const e of dest) dst.set(e.path, e);
  const rest: PlanStep[] = [];
  const sortedSource = [...source].sort((a, b) => comparePaths(a.path, b.path));
  for (const s of sortedSource) {
    const d = dst.get(s.path);
    if (d === undefined || deleted.has(s.path)) {
      rest.push(withHash({ action: 'copy', path: s.path, type: s.type, reason: d === undefined ? 'new' : 'type', bytes: fileBytes(s) }, s));
      continue;
    }
    const reason = difference(s, d, preserve, known);
    if (reason === undefined) {
      rest.push({ action: 'skip', path: s.path, type: s.type, reason: 'unchanged', bytes: 0 });
      continue;
    }
    const transfer = s.type === 'file' && (reason === 'type' || reason === 'size' || reason === 'content' || (reason === 'mtime' && !sameContentKnown(s, d, known)));
    rest.push(withHash({ action: 'update', path: s.path, type: s.type, reason, bytes: transfer ? s.size : 0 }, s));
  }
  return { steps: [...deletes, ...rest] };
}

/**
 * Whether the contents of two files (same path) are equal, as far as the inputs tell: the
 * caller's comparison, else the checksums, else the hashes; undefined when none can say.
 */
function contentEqual(s: ManifestEntry, d: ManifestEntry, known: ReadonlyMap<string, boolean>): boolean | undefined {
  const compared = known.get(s.path);
  if (compared !== undefined) return compared;
  if (s.checksum !== undefined && d.checksum !== undefined) return s.checksum === d.checksum;
  if (s.hash !== undefined && d.hash !== undefined) return s.hash === d.hash;
  return undefined;
}

function sameContentKnown(s: ManifestEntry, d: ManifestEntry, known: ReadonlyMap<string, boolean>): boolean {
  return s.size === d.size && contentEqual(s, d, known) === true;
}

/** Why `d` must change to become `s` (same path, no directory type change), or undefined. */
function difference(s: ManifestEntry, d: ManifestEntry, preserve: boolean, known: ReadonlyMap<string, boolean>): string | undefined {
  if (s.type !== d.type) return 'type';
  const mtimeDiffers = preserve ? mtimeUs(s.mtimeNs) !== mtimeUs(d.mtimeNs) : false;
  if (s.type === 'file') {
    if (s.size !== d.size) return 'size';
    const same = contentEqual(s, d, known);
    if (same !== undefined) {
      if (!same) return 'content';
    } else if (preserve ? mtimeDiffers : mtimeUs(s.mtimeNs) > mtimeUs(d.mtimeNs)) {
      return 'mtime'; // quick check failed: transfer
    }
    if ((s.mode & 0o7777) !== (d.mode & 0o7777)) return 'mode';
    if (mtimeDiffers) return 'mtime';
    return undefined;
  }
  if (s.type === 'symlink') {
    if (s.target !== d.target) return 'target';
    return mtimeDiffers ? 'mtime' : undefined;
  }
  if ((s.mode & 0o7777) !== (d.mode & 0o7777)) return 'mode';
  return mtimeDiffers ? 'mtime' : undefined;
}
