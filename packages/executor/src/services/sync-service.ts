import { closeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { FaasError } from '@faas/protocol';
import { buildManifest, checkRelativePath, ChecksumCache, countPlan, decodeUploadFrames, encodeFrames, planSync, type FileIdentity, type OutgoingContent } from '@faas/protocol/sync';
import type { ManifestEntry, PlanStep, SyncOptions, SyncPlan, SyncResult } from '@faas/protocol/sync';
import type { Logger } from 'pino';
import { RootedFs } from '../runtime/rooted-fs.ts';
import { checksumRooted } from './sync-checksums.ts';
import { ChecksumThread } from './sync-checksum-thread.ts';
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

/** Checksum mode: the first answer, the paths whose checksums the client sends next. */
export interface ChecksumsNeededResponse {
  syncId: string;
  checksumsNeeded: string[];
}

/** Checksum mode between its two requests: the walk is done, the instance's checksums under way. */
interface ChecksumSession {
  id: string;
  instanceId: string;
  request: PlanRequest;
  remoteRel: string;
  /** The instance's tree, its candidates getting their `checksum` from `instanceChecksums`. */
  remote: ManifestEntry[];
  /** The paths the client must send checksums for, in the order it sends them. */
  needed: string[];
  /** Settles when the instance's candidates are checksummed (never rejects: the error is kept). */
  instanceChecksums: Promise<{ error: unknown } | undefined>;
  expiresAt: number;
  busy: boolean;
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
  /** Checksum mode: sessions waiting for the client's checksums (same ids as `sessions` later). */
  private readonly checksumSessions = new Map<string, ChecksumSession>();

  /** Per instance: checksums of its files read by earlier checksum-mode syncs (see ChecksumCache). */
  private readonly checksumCaches = new Map<string, ChecksumCache>();
  /** Reads and hashes the instance's side of checksum mode while the event loop opens the files. */
  private readonly checksumThread = new ChecksumThread();

  constructor(private readonly deps: SyncServiceDeps) {
    deps.instances.onInstanceEnd((id) => {
      this.checksumCaches.delete(id);
    });
  }

  /** Stops the checksum thread (after the requests that use it ended). */
  async close(): Promise<void> {
    await this.checksumThread.close();
  }

  private checksumCache(instanceId: string): ChecksumCache {
    let cache = this.checksumCaches.get(instanceId);
    if (cache === undefined) this.checksumCaches.set(instanceId, (cache = new ChecksumCache(200_000)));
    return cache;
  }

  /**
   * Plans a sync. Quick mode answers the plan. Checksum mode answers the paths whose checksums
   * the client must send ({@link checksums}) and starts checksumming the instance's side of
   * them in the background, so both sides hash at the same time.
   */
  async plan(instanceId: string, request: PlanRequest): Promise<PlanResponse | ChecksumsNeededResponse> {
    const instance = await this.deps.instances.requireRunning(instanceId);
    const remoteRel = remoteRelative(request.remoteDir);
    if (request.manifest.length > MAX_MANIFEST_ENTRIES) throw new FaasError('LIMIT_OUT_OF_RANGE', `a manifest holds at most ${MAX_MANIFEST_ENTRIES} entries`, { limit: 'manifest_entries', value: request.manifest.length });
    for (const e of request.manifest) checkRelativePath(e.path);
    // The walk never checksums: checksum mode checksums only the candidates, after it.
    const { entries: remote, identities } = await this.remoteManifest(instance, remoteRel, { ...request.options, checksumOnly: false }, request.direction === 'upload');
    if (request.options.checksumOnly !== true) return this.planFrom(instance, request, remoteRel, remote, undefined);

    const remoteByPath = new Map(remote.map((e) => [e.path, e]));
    const candidates: ManifestEntry[] = [];
    const needed: string[] = [];
    for (const c of request.manifest) {
      const r = remoteByPath.get(c.path);
      if (c.type !== 'file' || r?.type !== 'file' || r.size !== c.size) continue;
      candidates.push(r);
      if (c.checksum === undefined) needed.push(c.path);
    }
    this.expire();
    const id = `sync-${randomBytes(10).toString('hex')}`;
    const fs = this.openRoot(instance);
    const instanceChecksums = checksumRooted(fs, remoteRel, candidates, { cache: this.checksumCache(instanceId), identities }, this.checksumThread).then(
      () => undefined,
      (error: unknown) => ({ error }),
    );
    void instanceChecksums.finally(() => fs.close());
    this.checksumSessions.set(id, { id, instanceId, request, remoteRel, remote, needed, instanceChecksums, expiresAt: Date.now() + SESSION_TTL_MS, busy: false });
    return { syncId: id, checksumsNeeded: needed };
  }

  /**
   * Checksum mode, second request: the client's checksum of every path the first answer named,
   * in its order (32 lowercase hex characters each). Answers the plan, as quick mode's single
   * request does; a dry run ends the session there, otherwise the same sync id goes on to the
   * content transfer.
   */
  async checksums(instanceId: string, syncId: string, checksums: readonly string[]): Promise<PlanResponse> {
    this.expire();
    const session = this.checksumSessions.get(syncId);
    if (session === undefined || session.instanceId !== instanceId) {
      if (this.sessions.get(syncId)?.instanceId === instanceId) throw new FaasError('VALIDATION_FAILED', `sync ${syncId} has its plan already; its checksums cannot be sent again`, { sync_id: syncId });
      throw new FaasError('SYNC_NOT_FOUND', `no sync ${syncId} waiting for checksums for instance ${instanceId} (planned, expired after 10 minutes, or never started)`, { sync_id: syncId });
    }
    if (session.busy) throw new FaasError('ID_CONFLICT', `sync ${syncId} is already being planned`, { id: syncId });
    if (checksums.length !== session.needed.length) {
      throw new FaasError('VALIDATION_FAILED', `sync ${syncId} needs ${session.needed.length} checksum(s), one for each path of checksums_needed in its order; got ${checksums.length}`, {
        sync_id: syncId,
        expected: session.needed.length,
        got: checksums.length,
      });
    }
    const bad = checksums.findIndex((c) => !/^[0-9a-f]{32}$/.test(c));
    if (bad >= 0) throw new FaasError('VALIDATION_FAILED', `checksum ${bad} (${JSON.stringify(session.needed[bad])}) is not 32 lowercase hex characters (XXH3-128)`, { path: session.needed[bad], index: bad });
    session.busy = true;
    session.expiresAt = Date.now() + SESSION_TTL_MS;
    try {
      const failed = await session.instanceChecksums;
      this.checksumSessions.delete(syncId);
      if (failed !== undefined) throw failed.error;
      const given = new Map(session.needed.map((p, i) => [p, checksums[i]!]));
      for (const e of session.request.manifest) {
        const c = given.get(e.path);
        if (c !== undefined) e.checksum = c;
      }
      const instance = await this.deps.instances.requireRunning(instanceId);
      return await this.planFrom(instance, session.request, session.remoteRel, session.remote, syncId);
    } finally {
      session.busy = false;
    }
  }

  /** The plan of `request` against the instance's tree `remote` (and, unless a dry run, its session). */
  private async planFrom(instance: InstanceRecord, request: PlanRequest, remoteRel: string, remote: ManifestEntry[], syncId: string | undefined): Promise<PlanResponse> {
    const instanceId = instance.id;
    const [source, dest] = request.direction === 'upload' ? [request.manifest, remote] : [remote, request.manifest];
    const plan = planSync(source, dest, request.options);
    const sourceByPath = new Map(source.map((e) => [e.path, e]));
    const transfers = transferSteps(plan);
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
    const id = syncId ?? `sync-${randomBytes(10).toString('hex')}`;
    this.sessions.set(id, { id, instanceId, direction: request.direction, remoteRel, options: request.options, plan, source: sourceByPath, expiresAt: Date.now() + SESSION_TTL_MS, busy: false });
    return { syncId: id, plan, needed, ...(request.direction === 'download' ? { source: sourceEntries() } : {}) };
  }

  /**
   * Upload: receives the upload frames (docs/sync-protocol.md) and applies the plan as files
   * arrive: each is written to a temp file in its directory, checked against its digest, and
   * renamed into place, so whatever arrived before a cut is complete and in place.
   */
  async receive(instanceId: string, syncId: string, body: AsyncIterable<Uint8Array>): Promise<SyncResult> {
    const session = this.take(instanceId, syncId, 'upload');
    const started = this.deps.clock.monotonicMs();
    const instance = await this.deps.instances.requireRunning(instanceId);
    const fs = this.openRoot(instance);
    try {
      const { plan, remoteRel, source } = session;
      const at = (p: string) => joinRel(remoteRel, p);
      const keep = session.options.preserveTimestamps !== false;
      this.ensureDir(fs, remoteRel);
      // 1. Type changes and directories first, so files have somewhere to go.
      for (const step of plan.steps) {
        if (step.action === 'delete' && step.reason === 'type') fs.removeTree(at(step.path));
        if ((step.action === 'copy' || step.action === 'update') && step.type === 'dir') {
          if (step.reason === 'type') fs.removeTree(at(step.path));
          fs.mkdirAt(at(step.path), source.get(step.path)!.mode);
        }
        if ((step.action === 'copy' || step.action === 'update') && step.type === 'file' && step.reason === 'type') fs.removeTree(at(step.path));
      }
      // 2. Files as they arrive, named by their index in the plan's `needed` list.
      const needed = transferSteps(plan);
      const received = new Array<boolean>(needed.length).fill(false);
      let bytes = 0;
      for await (const frame of decodeUploadFrames(body)) {
        const step = needed[frame.index];
        if (step === undefined) throw new FaasError('VALIDATION_FAILED', `the upload names file ${frame.index}; the plan needs ${needed.length}`, { index: frame.index });
        if (received[frame.index]) throw new FaasError('VALIDATION_FAILED', `the upload sends file ${frame.index} (${JSON.stringify(step.path)}) twice`, { index: frame.index, path: step.path });
        const entry = source.get(step.path)!;
        const mtime = keep ? entry.mtimeNs : undefined;
        if (frame.kind === 'file') {
          if (frame.size !== entry.size) {
            throw new FaasError('VALIDATION_FAILED', `the upload sends ${frame.size} bytes for ${JSON.stringify(step.path)}, whose manifest entry has ${entry.size}`, { path: step.path });
          }
          bytes += await fs.writeFileAtomic(at(step.path), frame.content, entry.mode, mtime);
        } else {
          const earlier = needed[frame.earlier];
          if (earlier === undefined || !received[frame.earlier] || source.get(earlier.path)!.size !== entry.size) {
            throw new FaasError('VALIDATION_FAILED', `the upload gives ${JSON.stringify(step.path)} the content of file ${frame.earlier}, which is not an earlier file of the same size`, { index: frame.index, earlier: frame.earlier });
          }
          await fs.writeFileAtomic(at(step.path), fs.readStream(at(earlier.path)), entry.mode, mtime);
        }
        received[frame.index] = true;
      }
      const missing = needed.filter((_, i) => !received[i]).map((s) => s.path);
      if (missing.length > 0) {
        throw new FaasError('SYNC_CONTENT_MISSING', `${missing.length} file(s) the plan needs did not arrive; what arrived is in place: sync again to send the rest`, { missing: missing.slice(0, 1000) });
      }
      // 3. Symlinks, attribute-only updates, deletes, then directory attributes (last: writing into a dir changes its mtime).
      for (const step of plan.steps) {
        const e = source.get(step.path);
        if ((step.action === 'copy' || step.action === 'update') && step.type === 'symlink') {
          if (step.reason !== 'mtime' || step.action === 'copy') fs.symlinkAt(at(step.path), e!.target!);
          if (keep) fs.setAttributes(at(step.path), undefined, e!.mtimeNs); // else every resync would update the link
        } else if ((step.action === 'copy' || step.action === 'update') && step.type === 'file' && step.bytes === 0) {
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
        for (const step of transferSteps(session.plan)) {
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
    if ((session === undefined || session.instanceId !== instanceId) && this.checksumSessions.get(syncId)?.instanceId === instanceId) {
      throw new FaasError('VALIDATION_FAILED', `sync ${syncId} waits for its checksums (POST .../sync/${syncId}/checksums) and has no plan yet`, { sync_id: syncId });
    }
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
    for (const [id, s] of this.checksumSessions) if (s.expiresAt < now && !s.busy) this.checksumSessions.delete(id);
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
  private async remoteManifest(instance: InstanceRecord, remoteRel: string, options: SyncOptions, createIfMissing: boolean): Promise<{ entries: ManifestEntry[]; identities: Map<string, FileIdentity> }> {
    const fs = this.openRoot(instance);
    try {
      if (remoteRel !== '' && fs.lstat(remoteRel) === null) {
        if (!createIfMissing) throw new FaasError('VALIDATION_FAILED', `/${remoteRel} does not exist in instance ${instance.id}`, { path: `/${remoteRel}` });
        return { entries: [], identities: new Map() };
      }
      const thaw = await this.deps.runtime.freeze(instance.id);
      let dirFd: number | undefined;
      try {
        dirFd = fs.openDir(remoteRel, { followFinal: true });
        const { entries, identities } = await buildManifest(`/proc/self/fd/${dirFd}`, options);
        return { entries, identities };
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

/** The plan's steps whose content travels, in plan order: the order of the plan response's `needed` list, whose positions upload frames use. */
function transferSteps(plan: SyncPlan): PlanStep[] {
  return plan.steps.filter((s) => (s.action === 'copy' || s.action === 'update') && s.type === 'file' && s.bytes > 0);
}

function joinRel(base: string, rel: string): string {
  return base === '' ? rel : `${base}/${rel}`;
}

async function hashRooted(fs: RootedFs, rel: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.readStream(rel)) h.update(chunk);
  return h.digest('hex');
}
