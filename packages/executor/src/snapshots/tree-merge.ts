/**
 * N-way merge of stored trees against one common base, by walking the Merkle DAGs together as
 * `diffTrees` does: a path whose state is equal in an input and in the base is "unchanged" in
 * that input and the input is left out below it, so a subtree that only one input changed (or
 * none) is taken whole by its hash, without being read. The cost follows the size of the
 * overlapping changes, not of the trees.
 *
 * Rules, per path (names compared as raw bytes):
 *
 * - An entry's *state* is absent ("deleted"), or a whole tuple: a file is (mode, content hash),
 *   a symlink is its target, a directory is (mode, subtree hash). Two inputs agree on a path
 *   only when their tuples are equal, so a mode-only change on one side and a content change on
 *   the other side of the same file is a conflict (simple and predictable, as in most DVCS).
 * - Inputs whose state equals the base's are ignored. No input changed it: the base stays. All
 *   inputs that changed it agree (one distinct new state): that state wins, whatever it is.
 * - Two or more distinct new states, all of them directories: the directory merges recursively
 *   (entry by entry, against the base directory, or against an empty one if the base had none
 *   or had a file/symlink there), and its own mode merges as a separate field (a `mode`
 *   conflict on the directory when changed differently). Two inputs adding the same new path
 *   with identical content therefore never conflict, at any depth.
 * - Otherwise a conflict: `delete_modify` when one of the new states is "deleted", else `type`
 *   when the types differ (e.g. a file here, a directory there), else `content` (file content
 *   or symlink target) or `mode` (files equal but for their mode). A directory deleted in one
 *   input and changed (at any depth) in another is one `delete_modify` on the directory.
 *
 * A conflict lists the inputs that changed the path, in input order, and is settled by the
 * strategy: 'ours' takes the first of them, 'theirs' the last, `{prefer: id}` that input's
 * state when it is one of them (otherwise the conflict stays unresolved). 'fail' settles none.
 * Any unresolved conflict means no tree: `fsHash` is undefined and the caller raises
 * MERGE_CONFLICT with `conflicts`.
 *
 * The result is the merged root hash plus the encodings of the directory nodes the merge
 * created, not a `DirEntry`: a `DirEntry` has no way to say "the stored subtree X", so handing
 * one to `storeTree` would mean expanding every unchanged subtree into memory entry by entry.
 * The new nodes are exactly the directories on the paths that two or more inputs changed
 * differently (plus the root); everything else is referenced by hash. `storeMergedTree` stores
 * them as `storeTree` stores a scanned tree.
 */
import { createHash } from 'node:crypto';
import { FaasError } from '@faas/protocol';
import { decodeTreeNode, encodeTreeNode, type TreeNodeEntry } from '@faas/protocol/snapshot-hash';
import type { BlobLease } from '../blobs/types.ts';
import type { BlobSink } from './tree-scanner.ts';
import type { StoredTree, TreeReader } from './tree-store.ts';

export type TreeMergeStrategy = 'fail' | 'ours' | 'theirs' | { readonly prefer: string };
export type ConflictKind = 'content' | 'mode' | 'type' | 'delete_modify';

export interface MergeInput {
  /** The input's id as the API shows it (snapshot id); `{prefer}` names one of these. */
  readonly id: string;
  /** The root node hash of the input's tree. */
  readonly fsHash: string;
}

export interface ConflictSide {
  id: string;
  /** 'file 0644 12 bytes 5891b5b522d5', 'dir 0755', 'symlink -> target' or 'deleted'. */
  state: string;
}

export interface Conflict {
  /** Raw path bytes relative to the root, components joined by '/'. */
  path: Buffer;
  kind: ConflictKind;
  /** The inputs that changed this path from the base, in input order. */
  sides: ConflictSide[];
}

export interface ResolvedConflict extends Conflict {
  /** The id of the input whose state the strategy took. */
  winner: string;
}

export interface NewTreeNode {
  hash: string;
  encoding: Buffer;
}

export interface MergeOutcome {
  /** The merged tree's root node hash (its fs hash); undefined when a conflict is unresolved. */
  fsHash: string | undefined;
  /**
   * Directory nodes the merge created (no input nor the base has them as such at that place),
   * children before parents, the root last, each once. Every other node and content blob the
   * merged tree refers to is one of the inputs' or the base's, already stored. Store them with
   * {@link storeMergedTree}. Empty when `fsHash` is undefined or is the base's or an input's.
   */
  nodes: NewTreeNode[];
  /** Conflicts the strategy left unresolved, by path bytes. Non-empty exactly when `fsHash` is undefined. */
  conflicts: Conflict[];
  /** Conflicts the strategy settled, by path bytes, each with the winning input. */
  resolved: ResolvedConflict[];
}

/** An input's (or the base's) entry at a path; null when there is none. */
type State = TreeNodeEntry | null;

interface Side {
  /** Index of the input in `inputs`: the order 'ours' / 'theirs' follow. */
  readonly index: number;
  readonly state: State;
}

const SLASH = Buffer.from('/');

/**
 * Merges `inputs` (two or more, though one is accepted) against their common ancestor `base`,
 * all given by root node hash. See the module comment for the rules. Reads each distinct node
 * at most once per call, and only nodes of directories that two or more inputs changed
 * differently. Throws VALIDATION_FAILED for no inputs or a `{prefer}` id that is not an input's.
 */
export async function mergeTrees(reader: TreeReader, base: string, inputs: readonly MergeInput[], strategy: TreeMergeStrategy): Promise<MergeOutcome> {
  if (inputs.length === 0) throw new FaasError('VALIDATION_FAILED', 'merge needs at least one input');
  if (typeof strategy === 'object' && !inputs.some((i) => i.id === strategy.prefer)) {
    throw new FaasError('VALIDATION_FAILED', `merge strategy prefers ${JSON.stringify(strategy.prefer)}, which is not one of the inputs`, { prefer: strategy.prefer });
  }
  const conflicts: Conflict[] = [];
  const resolved: ResolvedConflict[] = [];
  const nodes: NewTreeNode[] = [];
  const created = new Set<string>();
  const reads = new Map<string, Promise<TreeNodeEntry[]>>();
  const read = (hash: string): Promise<TreeNodeEntry[]> => {
    let r = reads.get(hash);
    if (r === undefined) reads.set(hash, (r = reader.node(hash)));
    return r;
  };
  const join = (prefix: Buffer, name: Buffer): Buffer => (prefix.length === 0 ? name : Buffer.concat([prefix, SLASH, name]));

  /** Records a conflict among `changed` (input order) and returns the winner, if the strategy picks one. */
  const settle = <T extends { index: number }>(path: Buffer, kind: ConflictKind, changed: readonly T[], describe: (s: T) => string): T | undefined => {
    const conflict: Conflict = { path, kind, sides: changed.map((s) => ({ id: inputs[s.index]!.id, state: describe(s) })) };
    let winner: T | undefined;
    if (strategy === 'ours') winner = changed[0];
    else if (strategy === 'theirs') winner = changed.at(-1);
    else if (typeof strategy === 'object') winner = changed.find((s) => inputs[s.index]!.id === strategy.prefer);
    if (winner === undefined) conflicts.push(conflict);
    else resolved.push({ ...conflict, winner: inputs[winner.index]!.id });
    return winner;
  };

  /** The merged state at `path`, whose base state is `base` and whose inputs (those still in play) are `sides`. */
  const mergeAt = async (path: Buffer, baseState: State, sides: readonly Side[]): Promise<State> => {
    const changed = sides.filter((s) => !sameState(s.state, baseState));
    if (changed.length === 0) return baseState;
    const first = changed[0]!.state;
    if (changed.every((s) => sameState(s.state, first))) return first;
    if (changed.every((s) => s.state !== null && s.state.type === 'dir')) {
      return mergeDirs(path, baseState !== null && baseState.type === 'dir' ? baseState : null, changed as readonly DirSide[]);
    }
    const winner = settle(path, conflictKind(changed), changed, (s) => describeState(s.state));
    // Unresolved: any state will do, the outcome has no tree.
    return winner === undefined ? baseState : winner.state;
  };

  /** Merges directories that changed differently; `base` null means an empty base directory. */
  const mergeDirs = async (path: Buffer, baseDir: TreeNodeEntry | null, sides: readonly DirSide[]): Promise<TreeNodeEntry> => {
    let mode: number;
    const modeChanged = baseDir === null ? sides : sides.filter((s) => s.state.mode !== baseDir.mode);
    if (modeChanged.length === 0) mode = baseDir!.mode;
    else if (modeChanged.every((s) => s.state.mode === modeChanged[0]!.state.mode)) mode = modeChanged[0]!.state.mode;
    else {
      const winner = settle(path, 'mode', modeChanged, (s) => describeState(s.state));
      mode = (winner ?? modeChanged[0]!).state.mode;
    }
    const entries = await mergeEntries(path, baseDir === null ? [] : await read(baseDir.hash!), sides);
    const name = sides[0]!.state.name;
    return { name, type: 'dir', mode, size: 0, hash: addNode(entries) };
  };

  /** Merges the entry lists of one directory: a k-way merge walk over lists sorted by name bytes. */
  const mergeEntries = async (path: Buffer, baseEntries: readonly TreeNodeEntry[], sides: readonly DirSide[]): Promise<TreeNodeEntry[]> => {
    const lists = await Promise.all(sides.map((s) => read(s.state.hash!)));
    const at = lists.map(() => 0);
    let b = 0;
    const out: TreeNodeEntry[] = [];
    for (;;) {
      let name: Buffer | undefined = b < baseEntries.length ? baseEntries[b]!.name : undefined;
      lists.forEach((list, k) => {
        const n = at[k]! < list.length ? list[at[k]!]!.name : undefined;
        if (n !== undefined && (name === undefined || Buffer.compare(n, name) < 0)) name = n;
      });
      if (name === undefined) break;
      const current = name;
      let baseState: State = null;
      if (b < baseEntries.length && baseEntries[b]!.name.equals(current)) baseState = baseEntries[b++]!;
      const states: Side[] = sides.map((s, k) => {
        const list = lists[k]!;
        if (at[k]! < list.length && list[at[k]!]!.name.equals(current)) return { index: s.index, state: list[at[k]!++]! };
        return { index: s.index, state: null };
      });
      const merged = await mergeAt(join(path, current), baseState, states);
      if (merged !== null) out.push(merged);
    }
    return out;
  };

  /** Encodes a merged directory, keeps its node if new, and returns its hash. */
  const addNode = (entries: readonly TreeNodeEntry[]): string => {
    const encoding = encodeTreeNode(entries);
    const hash = createHash('sha256').update(encoding).digest('hex');
    if (!created.has(hash)) {
      created.add(hash);
      nodes.push({ hash, encoding });
    }
    return hash;
  };

  // The root: a directory without a name or a mode of its own (neither is hashed).
  const rootSides = inputs.map((input, index) => ({ index, hash: input.fsHash })).filter((s) => s.hash !== base);
  let fsHash: string;
  if (rootSides.length === 0) fsHash = base;
  else if (rootSides.every((s) => s.hash === rootSides[0]!.hash)) fsHash = rootSides[0]!.hash;
  else {
    const asDir = (hash: string): TreeNodeEntry => ({ name: ROOT_NAME, type: 'dir', mode: 0, size: 0, hash });
    const entries = await mergeEntries(Buffer.alloc(0), await read(base), rootSides.map((s) => ({ index: s.index, state: asDir(s.hash) })));
    fsHash = addNode(entries);
  }
  const byPath = (x: Conflict, y: Conflict): number => Buffer.compare(x.path, y.path);
  conflicts.sort(byPath);
  resolved.sort(byPath);
  if (conflicts.length > 0) return { fsHash: undefined, nodes: [], conflicts, resolved };
  // A merge that reproduces an existing tree creates nothing (its root is not new).
  if (fsHash === base || inputs.some((i) => i.fsHash === fsHash)) return { fsHash, nodes: [], conflicts, resolved };
  return { fsHash, nodes, conflicts, resolved };
}

/**
 * Stores the nodes a merge created (children first, as `storeTree` does) and pins in `lease`
 * the ones already stored, plus every node and content blob the new nodes refer to that they
 * do not create themselves (reused subtrees and files of the inputs), so none of them can be
 * swept before the merged snapshot is committed. A reused subtree is pinned by its root node
 * only: what is below it stays live through the input snapshots, which the caller must keep
 * until the merged snapshot is committed. With no new nodes (the merge reproduced an existing
 * tree), pins the root. Throws when `outcome` has no tree.
 */
export async function storeMergedTree(outcome: MergeOutcome, sink: BlobSink, lease: BlobLease): Promise<StoredTree> {
  if (outcome.fsHash === undefined) throw new FaasError('MERGE_CONFLICT', `merge has ${outcome.conflicts.length} unresolved conflicts`, { conflicts: outcome.conflicts.length });
  const created = new Set(outcome.nodes.map((n) => n.hash));
  const pins = new Set<string>();
  let nodeBytes = 0;
  for (const { hash, encoding } of outcome.nodes) {
    for (const e of decodeForPins(encoding)) if (!created.has(e)) pins.add(e);
    if (await sink.has(hash)) {
      pins.add(hash);
      continue;
    }
    const r = await sink.put(encoding, { expectedHash: hash, lease });
    if (r.created) nodeBytes += r.size;
  }
  if (outcome.nodes.length === 0) pins.add(outcome.fsHash);
  if (pins.size > 0) await lease.pin([...pins]);
  return { fsHash: outcome.fsHash, nodeBytes, nodeCount: outcome.nodes.length };
}

/**
 * The lowest common ancestor of `ids` in the snapshot DAG (a snapshot may have several parents),
 * counting each snapshot as its own ancestor: the snapshot that is an ancestor-or-self of every
 * id and nearest to them. Distances are shortest parent-edge paths, found by a breadth-first
 * search from every id in lockstep, one generation at a time; the first generation at which
 * some snapshot has been reached from every id gives the smallest possible largest distance.
 * Among the snapshots reached from all ids by then, the one with the smallest sum of distances
 * wins, then the smallest id (string order), so the answer is deterministic. Undefined when the
 * ids share no ancestor (unrelated roots) or `ids` is empty. `parentsOf` is asked at most once
 * per snapshot; an unknown id may return [].
 */
export async function findCommonAncestor(parentsOf: (id: string) => Promise<readonly string[]>, ids: readonly string[]): Promise<string | undefined> {
  if (ids.length === 0) return undefined;
  const parentsCache = new Map<string, Promise<readonly string[]>>();
  const parents = (id: string): Promise<readonly string[]> => {
    let p = parentsCache.get(id);
    if (p === undefined) parentsCache.set(id, (p = parentsOf(id)));
    return p;
  };
  /** distance[i]: shortest distance from ids[i] to each snapshot reached so far. */
  const distance = ids.map((id) => new Map<string, number>([[id, 0]]));
  let frontiers = ids.map((id) => [id]);
  /** How many of the searches reached each snapshot, and the sum of their distances. */
  const reached = new Map<string, { count: number; sum: number }>();
  /** Snapshots reached from every id: all found in the same generation, the last one. */
  const common: string[] = [];
  const reach = (id: string, d: number): void => {
    const r = reached.get(id) ?? { count: 0, sum: 0 };
    r.count++;
    r.sum += d;
    reached.set(id, r);
    if (r.count === ids.length) common.push(id);
  };
  ids.forEach((id) => reach(id, 0));
  for (let generation = 0; ; generation++) {
    if (common.length > 0) {
      const sum = (id: string): number => reached.get(id)!.sum;
      return common.reduce((best, id) => (sum(id) < sum(best) || (sum(id) === sum(best) && id < best) ? id : best));
    }
    if (frontiers.every((f) => f.length === 0)) return undefined;
    frontiers = await Promise.all(
      frontiers.map(async (frontier, i) => {
        const next: string[] = [];
        const seen = distance[i]!;
        for (const id of frontier) {
          for (const p of await parents(id)) {
            if (seen.has(p)) continue;
            seen.set(p, generation + 1);
            reach(p, generation + 1);
            next.push(p);
          }
        }
        return next;
      }),
    );
  }
}

type DirSide = Side & { readonly state: TreeNodeEntry };

const ROOT_NAME = Buffer.from('.');

function sameState(a: State, b: State): boolean {
  if (a === null || b === null) return a === b;
  if (a.type !== b.type) return false;
  // Symlinks are always mode 0o777; a file's size follows from its content hash.
  if (a.type === 'symlink') return a.target!.equals(b.target!);
  return a.mode === b.mode && a.hash === b.hash;
}

/** The kind of a conflict among two or more distinct new states, not all directories. */
function conflictKind(changed: readonly Side[]): ConflictKind {
  if (changed.some((s) => s.state === null)) return 'delete_modify';
  const states = changed.map((s) => s.state!);
  if (states.some((s) => s.type !== states[0]!.type)) return 'type';
  if (states[0]!.type === 'file' && states.every((s) => s.hash === states[0]!.hash)) return 'mode';
  return 'content';
}

function describeState(s: State): string {
  if (s === null) return 'deleted';
  const mode = s.mode.toString(8).padStart(4, '0');
  switch (s.type) {
    case 'file':
      return `file ${mode} ${s.size} bytes ${s.hash!.slice(0, 12)}`;
    case 'dir':
      return `dir ${mode}`;
    case 'symlink':
      return `symlink -> ${s.target!.toString('utf8')}`;
  }
}

/** The hashes (subtrees and file contents) a node's entries refer to. */
function decodeForPins(encoding: Buffer): string[] {
  return decodeTreeNode(encoding).flatMap((e) => (e.hash === undefined ? [] : [e.hash]));
}
