import { closeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { FaasError } from '@faas/protocol';
import { buildManifest, checkRelativePath, countPlan, decodeFrames, encodeFrames, planSync, type OutgoingContent } from '@faas/protocol/sync';
import type { ManifestEntry, PlanStep, SyncOptions, SyncPlan, SyncResult } from '@faas/protocol/sync';
import type { Logger } from 'pino';
import { RootedFs } from '../runtime/rooted-fs.ts';
import type { Runtime } from '../runtime/types.ts';
import type { InstanceRecord } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import type { InstanceService } from './instance-service.ts';

export interface SyncServiceDeps {
  runtime: Runtime;
  instances: InstanceService;
  clock: Clock;
  logger: Logger;
}

export type SyncDirection = 'upload' | 'download';

export interface PlanRequest {
  direction: SyncDirection;
  /** Absolute path inside the instance. */
  remoteDir: string;
  options: SyncOptions;
  /** The client's tree: the source of an upload, the destination of a download. */
  manifest: ManifestEntry[];
}

export interface PlanResponse {
  syncId: string | null;
  plan: SyncPlan;
  /** Files whose content must travel: upload, paths the client sends (hash them first); download, the server's contents. */
  needed: Array<{ path: string; size: number; hash?: string }>;
  /**
   * Download: the instance's entries the client needs to apply the plan (mode, mtime, symlink
   * target): every path the plan copies or updates, and every directory it keeps.
   */
  source?: ManifestEntry[];
}

interface Session {
  id: string;
  instanceId: string;
  direction: SyncDirection;
  remoteRel: string;
  options: SyncOptions;
  plan: SyncPlan;
  /** Source entries by path (the client's for uploads, the instance's for downloads). */
  source: Map<string, ManifestEntry>;
  expiresAt: number;
  busy: boolean;
  /** Upload: the content hash of each needed path, as the client computed it. */
  hashes: Map<string, string>;
}

const SESSION_TTL_MS = 10 * 60_000;
const MAX_MANIFEST_ENTRIES = 1_000_000;

/**
 * Sync between a client's directory and one inside an instance (docs/sync-protocol.md). The
 * instance's side is only ever touched through {@link RootedFs}: every path resolves inside
 * the instance's root as the sandbox sees it, and files are created as the sandbox user.
 */
export class SyncService {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly deps: SyncServiceDeps) {}

  async plan(instanceId: string, request: PlanRequest): Promise<PlanResponse> {
    const instance = await this.deps.instances.requireRunning(instanceId);
    const remoteRel = remoteRelative(request.remoteDir);
    if (request.manifest.length > MAX_MANIFEST_ENTRIES) throw new FaasError('LIMIT_OUT_OF_RANGE', `a manifest holds at most ${MAX_MANIFEST_ENTRIES} entries`, { limit: 'manifest_entries', value: request.manifest.length });
    for (const e of request.manifest) checkRelativePath(e.path);
    const remote = await this.remoteManifest(instance, remoteRel, request.options, request.direction === 'upload');
    const [source, dest] = request.direction === 'upload' ? [request.manifest, remote] : [remote, request.manifest];
    const plan = planSync(source, dest, request.options);
    const sourceByPath = new Map(source.map((e) => [e.path, e]));
    const transfers = plan.steps.filter((s) => (s.action === 'copy' || s.action === 'update') && s.type === 'file' && s.bytes > 0);
    let needed: PlanResponse['needed'] = transfers.map((s) => ({ path: s.path, size: sourceByPath.get(s.path)!.size, ...(s.hash ? { hash: s.hash } : {}) }));
    const sourceEntries = (): ManifestEntry[] | undefined =>
      request.direction === 'download' ? plan.steps.filter((s) => s.action === 'copy' || s.action === 'update' || (s.action === 'skip' && s.type === 'dir')).map((s) => sourceByPath.get(s.path)!) : undefined;
    if (request.options.dryRun === true) return { syncId: null, plan, needed, ...(request.direction === 'download' ? { source: sourceEntries() } : {}) };
    if (request.direction === 'download') {
      // The frames carry hashes: hash what will travel (the instance's files, inside its root).
      const fs = this.openRoot(instance);
      try {
        for (const n of needed) {
          if (n.hash !== undefined) continue;
          n.hash = await hashRooted(fs, joinRel(remoteRel, n.path));
          sourceByPath.get(n.path)!.hash = n.hash;
        }
      } finally {
        fs.close();
      }
      needed = needed.map((n) => ({ ...n }));
    }
    this.expire();
    const id = `sync-${randomBytes(10).toString('hex')}`;
    this.sessions.set(id, { id, instanceId, direction: request.direction, remoteRel, options: request.options, plan, source: sourceByPath, expiresAt: Date.now() + SESSION_TTL_MS, busy: false, hashes: new Map() });
    return { syncId: id, plan, needed, ...(request.direction === 'download' ? { source: sourceEntries() } : {}) };
  }

  /** Upload: the client's content hashes of the needed paths (sent before the contents). */
  setHashes(instanceId: string, syncId: string, hashes: Record<string, string>): { known: number; missing: number } {
    const session = this.take(instanceId, syncId, 'upload');
    try {
      for (const [path, hash] of Object.entries(hashes)) session.hashes.set(path, hash);
      const needed = session.plan.steps.filter((s) => (s.action === 'copy' || s.action === 'update') && s.type === 'file' && s.bytes > 0);
      const missing = needed.filter((s) => !session.hashes.has(s.path) && s.hash === undefined).length;
      return { known: needed.length - missing, missing };
    } finally {
      session.busy = false;
    }
  }

  /**
   * Upload: receives the content frames (each file's hash must be known: the client sends
   * `hashes` of the needed paths first) and applies the plan as content arrives.
   */
  async receive(instanceId: string, syncId: string, body: AsyncIterable<Uint8Array>): Promise<SyncResult> {
    const session = this.take(instanceId, syncId, 'upload');
    const started = this.deps.clock.monotonicMs();
    const instance = await this.deps.instances.requireRunning(instanceId);
    const fs = this.openRoot(instance);
    try {
      const { plan, remoteRel, source } = session;
      const at = (p: string) => joinRel(remoteRel, p);
      this.ensureDir(fs, remoteRel);
      const byHash = new Map<string, PlanStep[]>();
      for (const step of plan.steps) {
        if ((step.action === 'copy' || step.action === 'update') && step.type === 'file' && step.bytes > 0) {
          const hash = session.hashes.get(step.path) ?? step.hash;
          if (hash === undefined || !/^[0-9a-f]{64}$/.test(hash)) throw new FaasError('VALIDATION_FAILED', `no content hash given for ${JSON.stringify(step.path)}`, { path: step.path });
          (byHash.get(hash) ?? byHash.set(hash, []).get(hash)!).push(step);
        }
      }
      // 1. Type changes and directories first, so files have somewhere to go.
      for (const step of plan.steps) {
        if (step.action === 'delete' && step.reason === 'type') fs.removeTree(at(step.path));
        if ((step.action === 'copy' || step.action === 'update') && step.type === 'dir') {
          if (step.reason === 'type') fs.removeTree(at(step.path));
          fs.mkdirAt(at(step.path), source.get(step.path)!.mode);
        }
        if ((step.action === 'copy' || step.action === 'update') && step.type === 'file' && step.reason === 'type') fs.removeTree(at(step.path));
      }
      // 2. Contents as they arrive; one content may serve several paths.
      let bytes = 0;
      const written = new Set<string>();
      for await (const frame of decodeFrames(body)) {
        const steps = byHash.get(frame.hash);
        if (steps === undefined || written.has(frame.hash)) {
          for await (const _ of frame.content) void _; // not asked for: read past it
          continue;
        }
        const [first, ...rest] = steps;
        const entry = source.get(first!.path)!;
        const keep = session.options.preserveTimestamps !== false;
        bytes += await fs.writeFileAtomic(at(first!.path), frame.content, entry.mode, keep ? entry.mtimeNs : undefined);
        for (const other of rest) {
          const e = source.get(other.path)!;
          await fs.writeFileAtomic(at(other.path), fs.readStream(at(first!.path)), e.mode, keep ? e.mtimeNs : undefined);
        }
        written.add(frame.hash);
      }
      const missing = [...byHash.keys()].filter((h) => !written.has(h));
      if (missing.length > 0) {
        throw new FaasError('SYNC_CONTENT_MISSING', `${missing.length} content(s) the plan needs did not arrive; what arrived is in place: sync again to send the rest`, { missing: missing.slice(0, 1000) });
      }
      // 3. Symlinks, attribute-only updates, deletes, then directory attributes (last: writing into a dir changes its mtime).
      const keep = session.options.preserveTimestamps !== false;
      for (const step of plan.steps) {
        const e = source.get(step.path);
        if ((step.action === 'copy' || step.action === 'update') && step.type === 'symlink') {
          if (step.reason !== 'mtime' || step.action === 'copy') fs.symlinkAt(at(step.path), e!.target!);
          if (keep) fs.setAttributes(at(step.path), undefined, e!.mtimeNs); // else every resync would update the link
        }
        else if ((step.action === 'copy' || step.action === 'update') && step.type === 'file' && step.bytes === 0) {
          if (e!.size === 0) await fs.writeFileAtomic(at(step.path), [], e!.mode, keep ? e!.mtimeNs : undefined);
          else fs.setAttributes(at(step.path), e!.mode, keep ? e!.mtimeNs : undefined);
        } else if (step.action === 'delete' && step.reason !== 'type') fs.removeTree(at(step.path));
      }
      for (const step of [...plan.steps].reverse()) {
        const e = source.get(step.path);
        if (e?.type === 'dir' && step.action !== 'delete') fs.setAttributes(at(step.path), e.mode, keep ? e.mtimeNs : undefined);
      }
      this.sessions.delete(syncId);
      return { ...countPlan(plan), bytesTransferred: bytes, durationMs: Math.round(this.deps.clock.monotonicMs() - started), dryRun: false };
    } finally {
      fs.close();
      session.busy = false;
    }
  }

  /**
   * Download: the needed contents of the instance's files as frames. The session and the
   * instance are checked before this resolves (so an unknown sync is a 404, not a stream that
   * fails after its 200 headers went out); the frames are read as the stream is consumed.
   */
  /**
   * Download: the needed contents as frames, and `release`, which the caller must call when the
   * response ends however it ends (a stream never read never runs its own cleanup).
   */
  async send(instanceId: string, syncId: string): Promise<{ content: AsyncIterable<Uint8Array>; release: () => void }> {
    const session = this.take(instanceId, syncId, 'download');
    let fs: RootedFs;
    try {
      const instance = await this.deps.instances.requireRunning(instanceId);
      fs = this.openRoot(instance);
    } catch (err) {
      session.busy = false;
      throw err;
    }
    const sessions = this.sessions;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      fs.close();
      session.busy = false;
    };
    const content = (async function* (): AsyncIterable<Uint8Array> {
      try {
        const seen = new Set<string>();
        const items: OutgoingContent[] = [];
        for (const step of session.plan.steps) {
          if (!((step.action === 'copy' || step.action === 'update') && step.type === 'file' && step.bytes > 0)) continue;
          const e = session.source.get(step.path)!;
          if (seen.has(e.hash!)) continue;
          seen.add(e.hash!);
          items.push({ hash: e.hash!, size: e.size, content: fs.readStream(joinRel(session.remoteRel, step.path)) });
        }
        yield* encodeFrames(items);
        sessions.delete(syncId);
      } finally {
        release();
      }
    })();
    return { content, release };
  }

  private take(instanceId: string, syncId: string, direction: SyncDirection): Session {
    this.expire();
    const session = this.sessions.get(syncId);
    if (session === undefined || session.instanceId !== instanceId) throw new FaasError('SYNC_NOT_FOUND', `no sync ${syncId} for instance ${instanceId} (finished, expired after 10 minutes, or never planned)`, { sync_id: syncId });
    if (session.direction !== direction) throw new FaasError('VALIDATION_FAILED', `sync ${syncId} is an ${session.direction}`, { sync_id: syncId });
    if (session.busy) throw new FaasError('ID_CONFLICT', `sync ${syncId} is already transferring`, { id: syncId });
    session.busy = true;
    session.expiresAt = Date.now() + SESSION_TTL_MS;
    return session;
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expiresAt < now && !s.busy) this.sessions.delete(id);
  }

  private openRoot(instance: InstanceRecord): RootedFs {
    return RootedFs.open(this.deps.runtime.rootDir(instance.id), { uid: instance.hostUid, gid: instance.hostUid });
  }

  /** Creates the directories of `rel` that do not exist, as the sandbox user. */
  private ensureDir(fs: RootedFs, rel: string): void {
    let at = '';
    for (const part of rel === '' ? [] : rel.split('/')) {
      at = at === '' ? part : `${at}/${part}`;
      fs.mkdirAt(at, 0o755);
    }
  }

  /**
   * The instance's tree under `remoteRel`, read with its processes frozen: the walk then sees
   * one state, and nothing can swap a directory for a symlink under it meanwhile. The
   * directory itself is resolved inside the instance's root first.
   */
  private async remoteManifest(instance: InstanceRecord, remoteRel: string, options: SyncOptions, createIfMissing: boolean): Promise<ManifestEntry[]> {
    const fs = this.openRoot(instance);
    try {
      if (remoteRel !== '' && fs.lstat(remoteRel) === null) {
        if (!createIfMissing) throw new FaasError('VALIDATION_FAILED', `/${remoteRel} does not exist in instance ${instance.id}`, { path: `/${remoteRel}` });
        return [];
      }
      const thaw = await this.deps.runtime.freeze(instance.id);
      let dirFd: number | undefined;
      try {
        dirFd = fs.openDir(remoteRel, { followFinal: true });
        const { entries } = await buildManifest(`/proc/self/fd/${dirFd}`, options);
        return entries;
      } finally {
        if (dirFd !== undefined) closeSync(dirFd);
        thaw();
      }
    } finally {
      fs.close();
    }
  }
}

/** `/workspace/src` → `workspace/src`; `/` → ''. INVALID_PATH for anything not absolute and clean. */
function remoteRelative(remoteDir: string): string {
  if (!remoteDir.startsWith('/')) throw new FaasError('INVALID_PATH', `remote_dir must be an absolute path inside the instance, got ${JSON.stringify(remoteDir)}`, { path: remoteDir });
  const rel = remoteDir.replace(/^\/+/, '').replace(/\/+$/, '');
  if (rel !== '') checkRelativePath(rel);
  return rel;
}

function joinRel(base: string, rel: string): string {
  return base === '' ? rel : `${base}/${rel}`;
}

async function hashRooted(fs: RootedFs, rel: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.readStream(rel)) h.update(chunk);
  return h.digest('hex');
}
