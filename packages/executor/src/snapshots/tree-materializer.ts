/**
 * Materialized snapshot trees: a snapshot's filesystem written out once as a real, read-only
 * directory (`<dir>/<fs hash>`), which instances restored or branched from it use as their
 * overlay lower layer. One tree serves any number of instances, so a branch costs no copy.
 *
 * A tree is a cache of what the blob store holds: it is built into a temporary directory and
 * renamed into place only when complete, so a crash leaves at most a `.tmp-*` directory, which
 * {@link TreeMaterializer.removeLeftovers} clears at start-up.
 *
 * Files are copied from their blobs, never hard-linked: a link would share one inode between
 * unrelated paths (and show as a link count above 1 inside the instance). Ownership, which the
 * snapshot hash leaves out (docs/snapshot-hash.md), is restored by one rule: what the
 * instance's environment base provides belongs to root, everything else to the sandbox user
 * (the only user a sandbox has, host uid {@link SNAPSHOT_TREE_UID} in the tree).
 */
import { constants, existsSync, readdirSync } from 'node:fs';
import { chmod, chown, copyFile, lchown, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FaasError } from '@faas/protocol';
import type { TreeNodeEntry } from '@faas/protocol/snapshot-hash';
import type { BlobStore } from '../blobs/types.ts';
import { SNAPSHOT_TREE_UID } from '../runtime/types.ts';
import type { TreeReader } from './tree-store.ts';

const TMP_PREFIX = '.tmp-';
const SLASH = Buffer.from('/');
/** Files copied at once (the thread pool has 4 threads; a few more keep it busy). */
const COPY_CONCURRENCY = 16;

export interface MaterializerOptions {
  /** Where trees live (created 0700: only root may enter). */
  dir: string;
  blobs: BlobStore & { pathOf?(hash: string): string };
  reader: TreeReader;
}

export class TreeMaterializer {
  readonly #inFlight = new Map<string, Promise<string>>();

  constructor(private readonly options: MaterializerOptions) {}

  pathOf(fsHash: string): string {
    return join(this.options.dir, fsHash);
  }

  /** Start-up: removes half-built trees a crash left. Returns how many. */
  async removeLeftovers(): Promise<number> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    const names = (await readdir(this.options.dir)).filter((n) => n.startsWith(TMP_PREFIX));
    await Promise.all(names.map((n) => rm(join(this.options.dir, n), { recursive: true, force: true })));
    return names.length;
  }

  /** Fs hashes of the trees that exist. */
  async list(): Promise<string[]> {
    if (!existsSync(this.options.dir)) return [];
    return (await readdir(this.options.dir)).filter((n) => !n.startsWith(TMP_PREFIX));
  }

  async remove(fsHash: string): Promise<void> {
    await rm(this.pathOf(fsHash), { recursive: true, force: true });
  }

  /**
   * The tree's directory, built first if needed (concurrent calls for one tree share the
   * work). `baseRoot` is the environment base whose paths stay owned by root.
   */
  materialize(fsHash: string, baseRoot: string): Promise<string> {
    const target = this.pathOf(fsHash);
    if (existsSync(target)) return Promise.resolve(target);
    let pending = this.#inFlight.get(fsHash);
    if (pending === undefined) {
      pending = this.#build(fsHash, baseRoot, target).finally(() => this.#inFlight.delete(fsHash));
      this.#inFlight.set(fsHash, pending);
    }
    return pending;
  }

  async #build(fsHash: string, baseRoot: string, target: string): Promise<string> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.options.dir, `${TMP_PREFIX}${fsHash.slice(0, 16)}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(tmp, { mode: 0o755 });
      /** File copies per directory: run interleaved, as creates in one directory serialise on its lock. */
      const copies = new Map<string, Array<() => Promise<void>>>();
      /** Directory modes are applied last, deepest first: a 0555 dir must still take its children. */
      const dirModes: Array<{ path: Buffer; mode: number }> = [];
      const { reader } = this.options;
      const tmpBuf = Buffer.from(tmp);
      const baseNames = (rel: Buffer): Set<string> | undefined => {
        try {
          return new Set(readdirSync(Buffer.concat([Buffer.from(baseRoot), SLASH, rel]), { encoding: 'latin1' }));
        } catch {
          return undefined;
        }
      };
      const go = async (hash: string, rel: Buffer, inBase: Set<string> | undefined): Promise<void> => {
        for (const entry of await reader.node(hash)) {
          const childRel = rel.length === 0 ? entry.name : Buffer.concat([rel, SLASH, entry.name]);
          const path = Buffer.concat([tmpBuf, SLASH, childRel]);
          const owner = inBase?.has(entry.name.toString('latin1')) ? 0 : SNAPSHOT_TREE_UID;
          if (entry.type === 'dir') {
            await mkdir(path, { mode: 0o700 });
            await chown(path, owner, owner);
            dirModes.push({ path, mode: entry.mode });
            await go(entry.hash!, childRel, owner === 0 ? baseNames(childRel) : undefined);
          } else if (entry.type === 'symlink') {
            await symlink(entry.target!, path);
            await lchown(path, owner, owner);
          } else {
            const key = rel.toString('latin1');
            let list = copies.get(key);
            if (list === undefined) copies.set(key, (list = []));
            list.push(() => this.#copyFile(entry, path, owner));
          }
        }
      };
      await go(fsHash, Buffer.alloc(0), baseNames(Buffer.alloc(0)));
      await runLimited(interleave([...copies.values()]), COPY_CONCURRENCY);
      for (const { path, mode } of dirModes.reverse()) await chmod(path, mode);
      await rename(tmp, target);
      return target;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  async #copyFile(entry: TreeNodeEntry, path: Buffer, owner: number): Promise<void> {
    const { blobs } = this.options;
    try {
      if (entry.size === 0) await writeFile(path, '');
      else if (blobs.pathOf) await copyFile(blobs.pathOf(entry.hash!), path, constants.COPYFILE_FICLONE);
      else await writeFile(path, await blobs.open(entry.hash!));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err instanceof FaasError && err.code === 'BLOB_NOT_FOUND')) {
        throw new FaasError('SNAPSHOT_CORRUPT', `content blob ${entry.hash} of ${JSON.stringify(entry.name.toString())} is missing from the blob store`, { hash: entry.hash }, { cause: err });
      }
      throw err;
    }
    // chown before chmod: chown clears setuid/setgid bits.
    await chown(path, owner, owner);
    await chmod(path, entry.mode);
  }
}

/** Round-robin over the lists: one item of each in turn. */
function interleave<T>(lists: T[][]): T[] {
  const out: T[] = [];
  for (let i = 0; out.length < lists.reduce((n, l) => n + l.length, 0); i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

async function runLimited(jobs: ReadonlyArray<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}
