/**
 * `syncFiles`: keeps a local directory and a directory inside an instance in step
 * (docs/sync-protocol.md). Node only: it reads and writes the local filesystem, so it lives
 * behind the `@faas/sdk/sync` subpath and the browser bundle of `@faas/sdk` never pulls it in.
 */
import { closeSync, constants, fstatSync, openSync, read, readSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline, type Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { FaasError } from '@faas/protocol/errors';
import {
  applyPlan,
  buildManifest,
  ChecksumCache,
  checksumEntries,
  countPlan,
  decodeFrames,
  joinInside,
  LocalDestination,
  type IncomingContent,
  type ManifestEntry,
  type ManifestResult,
  type PlanStep,
  type SkippedEntry,
  type SyncOptions,
  type SyncPlan,
  type SyncProgress,
  type SyncResult,
  type SyncSource,
} from '@faas/protocol/sync';
import type { SyncChecksumsRequest, SyncPlanAnswer, SyncPlanRequest, SyncPlanResponse, WireManifestEntry, WireSyncOptions, WireSyncResult } from '@faas/protocol/wire';
import { instancePath } from '../api-paths.ts';
import { errorFromResponse } from '../error-mapping.ts';
import { transportOf } from '../client-internals.ts';
import { writeUploadBody } from './upload-body.ts';
import type { FaaSPlatformClient } from '../faas-platform-client.ts';
import type { HttpTransport } from '../http-transport.ts';

/**
 * Options of {@link syncFiles}: the engine's {@link SyncOptions} plus the transfer's own.
 *
 * @example
 * await syncFiles(client, id, './app', '/workspace/app', { deleteUnmatched: true, onProgress: (p) => console.log(p.bytesDone) });
 */
export interface SyncFilesOptions extends SyncOptions {
  /** upload: local → instance; download: instance → local. @default 'upload' */
  direction?: 'upload' | 'download';
  /** Called while contents stream (at most every `progressIntervalMs`) and once at the end. */
  onProgress?: (progress: SyncProgress) => void;
  /** Upload body compression; auto = gzip unless the server URL is a loopback address. @default 'auto' */
  compression?: 'gzip' | 'none' | 'auto';
  /** Aborts the transfer; what arrived stays in place and the next sync sends only the rest. */
  signal?: AbortSignal;
  /** @default 100 */
  progressIntervalMs?: number;
}

export interface SyncFilesResult extends SyncResult {
  plan: SyncPlan;
  /** Local source entries left out of an upload (names not UTF-8, special files). */
  skipped: SkippedEntry[];
}

const CHUNK = 1024 * 1024;
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Syncs `localDir` with `remoteDir` (absolute, inside the instance) in the given direction.
 *
 * @example
 * import { FaaSPlatformClient } from '@faas/sdk';
 * import { syncFiles } from '@faas/sdk/sync';
 * const r = await syncFiles(new FaaSPlatformClient(), 'inst-1', './src', '/workspace/src', { excludePatterns: ['*.log'] });
 * console.log(`${r.filesCopied} copied, ${r.bytesTransferred} bytes`);
 */
export async function syncFiles(client: FaaSPlatformClient, instanceId: string, localDir: string, remoteDir: string, options: SyncFilesOptions = {}): Promise<SyncFilesResult> {
  const transport = transportOf(client);
  return (options.direction ?? 'upload') === 'download' ? download(transport, instanceId, localDir, remoteDir, options) : upload(transport, instanceId, localDir, remoteDir, options);
}

function engineOptions(o: SyncFilesOptions): SyncOptions {
  const out: SyncOptions = {};
  if (o.useGitignore !== undefined) out.useGitignore = o.useGitignore;
  if (o.includePatterns !== undefined) out.includePatterns = o.includePatterns;
  if (o.excludePatterns !== undefined) out.excludePatterns = o.excludePatterns;
  if (o.dryRun !== undefined) out.dryRun = o.dryRun;
  if (o.checksumOnly !== undefined) out.checksumOnly = o.checksumOnly;
  if (o.deleteUnmatched !== undefined) out.deleteUnmatched = o.deleteUnmatched;
  if (o.preserveTimestamps !== undefined) out.preserveTimestamps = o.preserveTimestamps;
  return out;
}

function optionsToWire(o: SyncOptions): WireSyncOptions {
  const w: WireSyncOptions = {};
  if (o.useGitignore !== undefined) w.use_gitignore = o.useGitignore;
  if (o.includePatterns !== undefined && o.includePatterns.length > 0) w.include_patterns = o.includePatterns;
  if (o.excludePatterns !== undefined && o.excludePatterns.length > 0) w.exclude_patterns = o.excludePatterns;
  if (o.dryRun !== undefined) w.dry_run = o.dryRun;
  if (o.checksumOnly !== undefined) w.checksum_only = o.checksumOnly;
  if (o.deleteUnmatched !== undefined) w.delete_unmatched = o.deleteUnmatched;
  if (o.preserveTimestamps !== undefined) w.preserve_timestamps = o.preserveTimestamps;
  return w;
}

function entryToWire(e: ManifestEntry): WireManifestEntry {
  const w: WireManifestEntry = { path: e.path, type: e.type, mode: e.mode, size: e.size, mtime_ns: e.mtimeNs };
  if (e.hash !== undefined) w.hash = e.hash;
  if (e.checksum !== undefined) w.checksum = e.checksum;
  if (e.target !== undefined) w.target = e.target;
  return w;
}

function entryFromWire(w: WireManifestEntry): ManifestEntry {
  const e: ManifestEntry = { path: w.path, type: w.type, mode: w.mode, size: w.size, mtimeNs: w.mtime_ns };
  if (w.hash !== undefined) e.hash = w.hash;
  if (w.checksum !== undefined) e.checksum = w.checksum;
  if (w.target !== undefined) e.target = w.target;
  return e;
}

function planFromWire(plan: SyncPlanResponse['plan']): SyncPlan {
  return {
    steps: plan.steps.map((s) => {
      const step: PlanStep = { action: s.action, path: s.path, type: s.type, reason: s.reason, bytes: s.bytes };
      if (s.hash !== undefined) step.hash = s.hash;
      return step;
    }),
  };
}

/**
 * Checksums of local files this process read in earlier syncs, by file identity (see
 * ChecksumCache: a file is read again as soon as its inode, size, mtime or ctime differ), so
 * repeated checksum-mode syncs of one tree read only what changed.
 */
const localChecksums = new ChecksumCache();

function isLoopback(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || host.endsWith('.localhost');
}

/**
 * Asks for the plan. In checksum mode that takes two requests (docs/sync-protocol.md): the
 * manifest, whose answer names the paths to checksum (same path, regular files of the same
 * size on both sides); then their checksums, computed here under `localRoot` while the server
 * checksums its side of the same paths; the second answer is the plan.
 */
async function requestPlan(
  transport: HttpTransport,
  instanceId: string,
  body: SyncPlanRequest,
  localRoot: string,
  local: ManifestResult,
  signal: AbortSignal | undefined,
): Promise<SyncPlanResponse> {
  const first = await transport.request<SyncPlanAnswer>({ method: 'POST', path: `${instancePath(instanceId)}/sync`, body, timeoutMs: null, ...(signal ? { signal } : {}) });
  if (!('checksums_needed' in first)) return first;
  const byPath = new Map(local.entries.map((e) => [e.path, e]));
  const wanted = first.checksums_needed.map((path) => {
    const e = byPath.get(path);
    if (e === undefined || e.type !== 'file') throw new FaasError('INTERNAL_ERROR', `the server asked for the checksum of ${JSON.stringify(path)}, which is no local file of the manifest`, { path });
    return e;
  });
  await checksumEntries(localRoot, wanted, { cache: localChecksums, identities: local.identities });
  signal?.throwIfAborted();
  const checksums: SyncChecksumsRequest = { checksums: wanted.map((e) => e.checksum!) };
  return transport.request<SyncPlanResponse>({
    method: 'POST',
    path: `${instancePath(instanceId)}/sync/${encodeURIComponent(first.sync_id)}/checksums`,
    body: checksums,
    timeoutMs: null,
    ...(signal ? { signal } : {}),
  });
}

/** Reports at most every `interval` ms, and always when forced. */
function reporter(onProgress: ((p: SyncProgress) => void) | undefined, interval: number) {
  let last = -Infinity;
  return (p: SyncProgress, force = false): void => {
    if (!onProgress) return;
    const now = performance.now();
    if (!force && now - last < interval) return;
    last = now;
    onProgress({ ...p });
  };
}

/**
 * The content of a local file in fresh chunks (a chunk handed to fetch may still be queued
 * on the socket when the next is read, so buffers are never reused), never through a symlink.
 */
async function* readLocalFile(abs: string, rel: string): AsyncIterable<Uint8Array> {
  let fd: number;
  try {
    fd = openSync(abs, READ_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new FaasError('VALIDATION_FAILED', `${JSON.stringify(rel)} became a symlink`, { path: rel });
    throw err;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new FaasError('VALIDATION_FAILED', `${JSON.stringify(rel)} is no longer a regular file`, { path: rel });
  }
  try {
    if (st.size < CHUNK) {
      // Small: one synchronous read (cheaper than a thread-pool round trip).
      const buf = Buffer.allocUnsafeSlow(st.size + 1);
      let n = 0;
      for (;;) {
        const got = readSync(fd, buf, n, buf.length - n, null);
        if (got === 0 || (n += got) === buf.length) break;
      }
      if (n <= st.size) {
        if (n > 0) yield buf.subarray(0, n);
        return;
      }
      // It grew meanwhile: stream it from the start.
    }
    let position = 0;
    for (;;) {
      const buf = Buffer.allocUnsafeSlow(CHUNK);
      const got = await new Promise<number>((resolve, reject) => read(fd, buf, 0, CHUNK, position, (err, n) => (err ? reject(err) : resolve(n))));
      if (got === 0) return;
      position += got;
      yield buf.subarray(0, got);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * POSTs a body written by `write` with node:http(s) (gzip-compressed when asked) and resolves
 * with the JSON answer. Node 20's fetch does not apply backpressure to a streamed request body
 * (a 1 GiB upload grew the process by 1 GiB); node:http does, through write callbacks.
 * `write` gets a signal aborted when the request fails, so it stops waiting on the sink.
 */
function postStream(
  transport: HttpTransport,
  path: string,
  headers: Record<string, string>,
  gzip: boolean,
  write: (sink: Writable, failed: AbortSignal) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  const describe = `POST ${path}`;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const url = new URL(`${transport.baseUrl}${path}`);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const failed = new AbortController();
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      failed.abort(error);
      req.destroy();
      gz?.destroy();
      if (signal?.aborted) reject(signal.reason);
      else if (error instanceof FaasError) reject(error);
      else reject(new FaasError('CONNECTION_FAILED', `${describe} to ${transport.baseUrl} failed: ${(error as Error).message}`, {}, { cause: error }));
    };
    const onAbort = (): void => fail(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const req = send(url, { method: 'POST', headers: { ...headers, ...transport.authHeaders(), 'transfer-encoding': 'chunked' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        const text = Buffer.concat(parts).toString('utf8');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) return fail(errorFromResponse(status, parsed, text));
        if (parsed === undefined) return fail(new FaasError('INTERNAL_ERROR', `the server answered ${describe} with a body that is not JSON`, { body: text.slice(0, 500) }));
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolve(parsed);
      });
    });
    req.on('error', fail);
    const gz = gzip ? createGzip({ level: 1, chunkSize: 256 * 1024 }) : undefined;
    if (gz) pipeline(gz, req, (error) => error && fail(error));
    const sink: Writable = gz ?? req;
    // The server may answer (an error) before the body is sent: the response handler settles.
    write(sink, failed.signal).then(
      () => {
        if (!settled) sink.end();
      },
      (error: unknown) => fail(error),
    );
  });
}

async function upload(transport: HttpTransport, instanceId: string, localDir: string, remoteDir: string, options: SyncFilesOptions): Promise<SyncFilesResult> {
  const started = performance.now();
  const sync = engineOptions(options);
  const { signal } = options;
  // No checksums in the manifest: checksum mode asks only for those of the files it compares.
  const scanned = await buildManifest(localDir, { ...sync, checksumOnly: false });
  const { entries, skipped } = scanned;
  const planned = await requestPlan(transport, instanceId, { direction: 'upload', remote_dir: remoteDir, options: optionsToWire(sync), manifest: entries.map(entryToWire) }, localDir, scanned, signal);
  const plan = planFromWire(planned.plan);
  if (sync.dryRun === true || planned.sync_id === null) {
    return { ...countPlan(plan), durationMs: performance.now() - started, dryRun: true, plan, skipped };
  }
  const syncPath = `${instancePath(instanceId)}/sync/${encodeURIComponent(planned.sync_id)}`;

  // The files the server needs, in its order: a frame names a file by its position here.
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const files = planned.needed.map((n) => {
    const e = byPath.get(n.path);
    if (e === undefined || e.type !== 'file') throw new FaasError('INTERNAL_ERROR', `the server asked for ${JSON.stringify(n.path)}, which is no local file`, { path: n.path });
    return { path: e.path, size: e.size };
  });
  const progress: SyncProgress = { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 };
  for (const s of plan.steps) if (s.action !== 'skip') progress.filesTotal++;
  for (const f of files) progress.bytesTotal += f.size;
  const report = reporter(options.onProgress, options.progressIntervalMs ?? 100);
  report(progress, true);

  const gzip = options.compression === 'gzip' || ((options.compression ?? 'auto') === 'auto' && !isLoopback(transport.baseUrl));
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', accept: 'application/json' };
  if (gzip) headers['content-encoding'] = 'gzip';
  const body = (sink: Writable, failed: AbortSignal): Promise<void> =>
    writeUploadBody(sink, {
      root: localDir,
      files,
      signal: failed,
      onBytes: (n, path) => {
        progress.bytesDone += n;
        progress.path = path;
        report(progress);
      },
      onFileDone: () => {
        progress.filesDone++;
        report(progress);
      },
    });
  const wire = (await postStream(transport, `${syncPath}/content`, headers, gzip, body, signal)) as WireSyncResult;
  progress.filesDone = progress.filesTotal;
  delete progress.path;
  report(progress, true);
  return {
    filesCopied: wire.files_copied,
    filesUpdated: wire.files_updated,
    filesDeleted: wire.files_deleted,
    filesSkipped: wire.files_skipped,
    bytesTransferred: wire.bytes_transferred,
    durationMs: performance.now() - started,
    dryRun: false,
    plan,
    skipped,
  };
}

async function download(transport: HttpTransport, instanceId: string, localDir: string, remoteDir: string, options: SyncFilesOptions): Promise<SyncFilesResult> {
  const started = performance.now();
  const sync = engineOptions(options);
  const { signal } = options;
  const dest = new LocalDestination(localDir);
  const scanned = await dest.scan({ ...sync, checksumOnly: false }, () => false);
  const planned = await requestPlan(transport, instanceId, { direction: 'download', remote_dir: remoteDir, options: optionsToWire(sync), manifest: scanned.entries.map(entryToWire) }, dest.root, scanned, signal);
  const plan = planFromWire(planned.plan);
  if (sync.dryRun === true || planned.sync_id === null) {
    return { ...countPlan(plan), durationMs: performance.now() - started, dryRun: true, plan, skipped: [] };
  }
  if (planned.source === undefined) throw new FaasError('INTERNAL_ERROR', 'the server sent no source entries with the download plan (it is older than this SDK)', {});
  const source = new Map(planned.source.map((w) => [w.path, entryFromWire(w)]));
  const hashOf = new Map<string, string>();
  for (const n of planned.needed) if (n.hash !== undefined) hashOf.set(n.path, n.hash);
  const stepOf = new Map(plan.steps.map((s) => [s.path, s]));
  await mkdir(localDir, { recursive: true });

  const syncPath = `${instancePath(instanceId)}/sync/${encodeURIComponent(planned.sync_id)}`;
  const response = await transport.raw({ method: 'GET', path: `${syncPath}/content`, headers: { accept: 'application/octet-stream' }, timeoutMs: transport.timeoutMs, ...(signal ? { signal } : {}) });
  if (!response.body) throw new FaasError('CONNECTION_FAILED', 'the server sent no content stream', {});
  const frames = decodeFrames(response.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  /** The first local path each content was written to (later paths copy it). */
  const written = new Map<string, string>();

  // applyPlan runs file steps one at a time in plan order (concurrency 1), the order in which
  // the server sends each distinct content, so `open` takes the next frame or a local copy.
  const frameSource: SyncSource = {
    entry(path: string): ManifestEntry {
      const e = source.get(path);
      if (!e) throw new FaasError('INTERNAL_ERROR', `the download plan has no source entry for ${JSON.stringify(path)}`, { path });
      return e;
    },
    async *open(path: string): AsyncIterable<Uint8Array> {
      const step = stepOf.get(path);
      if (step === undefined || step.bytes === 0) return; // an empty file: nothing travels
      const hash = hashOf.get(path);
      if (hash === undefined) throw new FaasError('INTERNAL_ERROR', `the download plan names no content hash for ${JSON.stringify(path)}`, { path });
      const first = written.get(hash);
      if (first !== undefined) {
        yield* readLocalFile(joinInside(dest.root, first), first);
        return;
      }
      const next: IteratorResult<IncomingContent> = await frames.next();
      if (next.done === true) throw new FaasError('VALIDATION_FAILED', `the content stream ended before ${JSON.stringify(path)}`, { path, cut: true });
      if (next.value.hash !== hash) throw new FaasError('VALIDATION_FAILED', `the content stream sent ${next.value.hash} where ${JSON.stringify(path)} (${hash}) was expected`, { path });
      yield* next.value.content;
      written.set(hash, path);
    },
  };
  let result: SyncResult;
  try {
    result = await applyPlan(plan, frameSource, dest, { ...sync, concurrency: 1, progressIntervalMs: options.progressIntervalMs ?? 100 }, options.onProgress);
    const end = await frames.next();
    if (end.done !== true) throw new FaasError('VALIDATION_FAILED', 'the content stream carried contents the plan does not need', {});
  } finally {
    await frames.return?.(undefined).catch(() => undefined);
    await response.body.cancel().catch(() => undefined);
  }
  return { ...result, durationMs: performance.now() - started, plan, skipped: [] };
}
