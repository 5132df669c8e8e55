import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { RotateSshKeyRequest, SshAccess, SshAuditList, SshAuditQuery, SshKey, SshKeyList, type SshConnection } from '@faas/protocol';
import type { IssuedSshKey } from '../services/ssh-key-service.ts';
import { sshAuditToWire, sshKeyToWire } from './ssh-wire-mapping.ts';
import { typed, type RouteServices, type SshGatewayInfo } from './route-context.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const KeyParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }), key_id: Type.String({ minLength: 1, maxLength: 64 }) });

/** SSH keys of an instance: rotate (issue), current key with connection info, list, revoke, audit. */
export function sshRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    const { sshKeys } = services;
    const access = (issued: IssuedSshKey) => ({ key: sshKeyToWire(issued.key, issued.privateKey), connection: connectionOf(issued.key.instanceId, services.sshGatewayInfo()) });

    api.post(
      '/api/v1/instances/:id/ssh/rotate',
      { schema: { tags: ['ssh'], summary: 'Issue a new SSH key (generated, or your public key), replacing the current one', params: IdParams, body: RotateSshKeyRequest, response: { 201: SshAccess } } },
      async (request, reply) => {
        const b = request.body;
        const issued = await sshKeys.rotate(request.params.id, {
          algorithm: b.algorithm,
          expiresInMs: b.expires_in_ms,
          overlapMs: b.overlap_ms,
          publicKey: b.public_key,
          currentKeyId: b.current_key_id,
          autoRotateBeforeMs: b.auto_rotate_before_ms,
        });
        return reply.status(201).send(access(issued));
      },
    );
    api.get(
      '/api/v1/instances/:id/ssh',
      { schema: { tags: ['ssh'], summary: 'The current SSH key (with its private key when the server made it) and how to connect', params: IdParams, response: { 200: SshAccess } } },
      async (request) => access(await sshKeys.current(request.params.id)),
    );
    api.get('/api/v1/instances/:id/ssh/keys', { schema: { tags: ['ssh'], summary: 'Every SSH key of the instance, newest first', params: IdParams, response: { 200: SshKeyList } } }, async (request) => ({
      keys: (await sshKeys.list(request.params.id)).map((k) => sshKeyToWire(k, null)),
    }));
    api.delete('/api/v1/instances/:id/ssh/keys/:key_id', { schema: { tags: ['ssh'], summary: 'Revoke an SSH key now', params: KeyParams, response: { 200: SshKey } } }, async (request) =>
      sshKeyToWire(await sshKeys.revoke(request.params.id, request.params.key_id), null),
    );
    api.get(
      '/api/v1/instances/:id/ssh/audit',
      { schema: { tags: ['ssh'], summary: 'SSH audit trail: keys issued, rotated, revoked, expired, and every login attempt', params: IdParams, querystring: SshAuditQuery, response: { 200: SshAuditList } } },
      async (request) => {
        const { after, limit } = request.query;
        const entries = await sshKeys.audit(request.params.id, { after: after === undefined ? undefined : Number(after), limit: limit === undefined ? undefined : Number(limit) });
        return { events: entries.map(sshAuditToWire) };
      },
    );
  };
}

function connectionOf(instanceId: string, gateway: SshGatewayInfo | null): SshConnection | null {
  if (gateway === null) return null;
  return {
    host: gateway.host,
    port: gateway.port,
    user: instanceId,
    host_key_fingerprint: gateway.hostKeyFingerprint,
    // ssh splits user@host at the first '@', so an IPv6 literal needs no brackets here.
    command: `ssh -i <key file> -p ${gateway.port} ${instanceId}@${gateway.host}`,
  };
}
