import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { FaasError, SyncChecksumsRequest, SyncPlanAnswer, SyncPlanRequest, SyncPlanResponse, WireSyncResult, type WireManifestEntry, type WireSyncOptions } from '@faas/protocol';
import type { ManifestEntry, SyncOptions, SyncResult } from '@faas/protocol/sync';
import type { PlanResponse } from '../services/sync-service.ts';
import { readAhead } from '../util/read-ahead.ts';
import { typed, type RouteServices } from './route-context.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const SyncParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }), sync_id: Type.String({ minLength: 1, maxLength: 128 }) });
/** Content streams are as large as the files they carry. */
const CONTENT_BODY_LIMIT = 2 ** 50;
/** A manifest of the 1,000,000 entries the service accepts is ~200 MB of JSON. */
const PLAN_BODY_LIMIT = 512 * 1024 * 1024;
/** Bytes of a content stream read ahead of the disk writes: the socket keeps flowing while they run. */
const CONTENT_READ_AHEAD = 4 * 1024 * 1024;

function optionsFromWire(o: WireSyncOptions = {}): SyncOptions {
  return {
    useGitignore: o.use_gitignore,
    includePatterns: o.include_patterns,
    excludePatterns: o.exclude_patterns,
    dryRun: o.dry_run,
    checksumOnly: o.checksum_only,
    deleteUnmatched: o.delete_unmatched,
    preserveTimestamps: o.preserve_timestamps,
  };
}

function entryFromWire(e: WireManifestEntry): ManifestEntry {
  return {
    path: e.path,
    type: e.type,
    mode: e.mode,
    size: e.size,
    mtimeNs: e.mtime_ns,
    ...(e.hash ? { hash: e.hash } : {}),
    ...(e.checksum ? { checksum: e.checksum } : {}),
    ...(e.target !== undefined ? { target: e.target } : {}),
  };
}

function entryToWire(e: ManifestEntry): WireManifestEntry {
  return {
    path: e.path,
    type: e.type,
    mode: e.mode,
    size: e.size,
    mtime_ns: e.mtimeNs,
    ...(e.hash !== undefined ? { hash: e.hash } : {}),
    ...(e.checksum !== undefined ? { checksum: e.checksum } : {}),
    ...(e.target !== undefined ? { target: e.target } : {}),
  };
}

function planToWire(r: PlanResponse) {
  return { sync_id: r.syncId, plan: r.plan, needed: r.needed, ...(r.source !== undefined ? { source: r.source.map(entryToWire) } : {}) };
}

function resultToWire(r: SyncResult) {
  return { files_copied: r.filesCopied, files_updated: r.filesUpdated, files_deleted: r.filesDeleted, files_skipped: r.filesSkipped, bytes_transferred: r.bytesTransferred, duration_ms: r.durationMs, dry_run: r.dryRun };
}

/** File sync between a client and an instance (docs/sync-protocol.md). */
export function syncRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    // Content streams arrive raw; the route decodes them as they stream.
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
    const api = typed(app);
    api.post(
      '/api/v1/instances/:id/sync',
      {
        bodyLimit: PLAN_BODY_LIMIT,
        schema: { tags: ['sync'], summary: 'Plan a sync: what must be copied, updated, deleted (checksum mode: which checksums to send first)', params: IdParams, body: SyncPlanRequest, response: { 200: SyncPlanAnswer } },
      },
      async (request) => {
        const { direction, remote_dir, options, manifest } = request.body;
        const r = await services.sync.plan(request.params.id, { direction, remoteDir: remote_dir, options: optionsFromWire(options), manifest: manifest.map(entryFromWire) });
        return 'checksumsNeeded' in r ? { sync_id: r.syncId, checksums_needed: r.checksumsNeeded } : planToWire(r);
      },
    );
    api.post(
      '/api/v1/instances/:id/sync/:sync_id/checksums',
      {
        bodyLimit: PLAN_BODY_LIMIT,
        schema: { tags: ['sync'], summary: 'Checksum mode: the client checksums of checksums_needed; answers the plan', params: SyncParams, body: SyncChecksumsRequest, response: { 200: SyncPlanResponse } },
      },
      async (request) => planToWire(await services.sync.checksums(request.params.id, request.params.sync_id, request.body.checksums)),
    );
    api.post(
      '/api/v1/instances/:id/sync/:sync_id/content',
      { bodyLimit: CONTENT_BODY_LIMIT, schema: { tags: ['sync'], summary: 'Upload: stream the needed files as upload frames; applies the plan', params: SyncParams, response: { 200: WireSyncResult } } },
      async (request) => {
        if (request.headers['content-type'] !== 'application/octet-stream') throw new FaasError('UNSUPPORTED_MEDIA_TYPE', 'content frames are sent as application/octet-stream', {});
        let body = request.body as Readable;
        const encoding = request.headers['content-encoding'];
        if (encoding === 'gzip') body = body.pipe(createGunzip());
        else if (encoding !== undefined && encoding !== 'identity') throw new FaasError('UNSUPPORTED_MEDIA_TYPE', `content-encoding ${encoding} is not supported (gzip or identity)`, { encoding });
        return resultToWire(await services.sync.receive(request.params.id, request.params.sync_id, readAhead(body, CONTENT_READ_AHEAD)));
      },
    );
    api.get('/api/v1/instances/:id/sync/:sync_id/content', { schema: { tags: ['sync'], summary: 'Download: the needed contents as frames', params: SyncParams } }, async (request, reply) => {
      const { content, release } = await services.sync.send(request.params.id, request.params.sync_id);
      const stream = Readable.from(content);
      // A client that goes away before reading: the session must not stay busy, nor its files open.
      reply.raw.once('close', () => {
        stream.destroy();
        release();
      });
      return reply.header('content-type', 'application/octet-stream').send(stream);
    });
  };
}
