import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { EnvVars, ExtendSessionRequest, HeartbeatResponse, Session, SessionCheckpoint, StartSessionRequest } from '@faas/protocol';
import { checkpointToWire } from '../services/sessions/session-service.ts';
import type { SessionRecord } from '../store/types.ts';
import { typed, type RouteServices } from './route-context.ts';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, description: 'A session id (sess-...) or the id of one of its executions.' }) });
const ResumeRequest = Type.Object(
  { env_vars: Type.Optional(EnvVars) },
  { additionalProperties: false, description: 'Env var values are never stored: a session started with env_vars gets them again only if the resume passes them.' },
);

export function sessionToWire(r: SessionRecord): Session {
  return {
    id: r.id,
    execution_id: r.executionId,
    instance_id: r.instanceId,
    state: r.state,
    state_reason: r.stateReason,
    started_at: r.startedAt.toISOString(),
    deadline: r.deadline.toISOString(),
    last_heartbeat: r.lastHeartbeat.toISOString(),
    heartbeat_interval_ms: r.heartbeatIntervalMs,
    idle_timeout_ms: r.idleTimeoutMs,
    grace_period_ms: r.gracePeriodMs,
    checkpoint_interval_ms: r.checkpointIntervalMs,
    checkpoints: r.checkpoints.map(checkpointToWire),
    extended_count: r.extendedCount,
    max_extensions: r.maxExtensions,
    auto_extend: r.autoExtend,
    exit_code: r.exitCode,
  };
}

/** Long-running sessions (docs/sessions.md). */
export function sessionRoutes(services: RouteServices) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const api = typed(app);
    const tags = ['sessions'];
    api.post(
      '/api/v1/executions/long-running',
      { schema: { tags, summary: 'Start a long-running session: an execution with a deadline, heartbeats and checkpoints', body: StartSessionRequest, response: { 201: Session } } },
      async (request, reply) => reply.status(201).send(sessionToWire(await services.sessions.start(request.body))),
    );
    api.post(
      '/api/v1/executions/:id/heartbeat',
      { schema: { tags, summary: 'Heartbeat: the session is still wanted (resets its idle timeout)', params: IdParams, response: { 200: HeartbeatResponse } } },
      async (request) => {
        const s = await services.sessions.heartbeat(request.params.id);
        return { id: s.id, last_heartbeat: s.lastHeartbeat.toISOString(), deadline: s.deadline.toISOString(), state: s.state };
      },
    );
    api.post(
      '/api/v1/executions/:id/extend',
      { schema: { tags, summary: 'Move the deadline later (refused past the cap or the max extensions)', params: IdParams, body: ExtendSessionRequest, response: { 200: Session } } },
      async (request) => sessionToWire(await services.sessions.extend(request.params.id, request.body.duration_ms)),
    );
    api.post(
      '/api/v1/executions/:id/checkpoint',
      { schema: { tags, summary: 'Take a checkpoint of the session\'s instance now', params: IdParams, response: { 200: SessionCheckpoint } } },
      async (request) => checkpointToWire(await services.sessions.checkpoint(request.params.id)),
    );
    api.get(
      '/api/v1/executions/:id/session',
      { schema: { tags, summary: 'A session with its deadline, state and checkpoints', params: IdParams, response: { 200: Session } } },
      async (request) => sessionToWire(await services.sessions.get(request.params.id)),
    );
    api.post(
      '/api/v1/executions/:id/stop',
      { schema: { tags, summary: 'End the session gracefully (warning, final checkpoint, SIGTERM, SIGKILL after the grace period); answers once it ended', params: IdParams, response: { 200: Session } } },
      async (request) => sessionToWire(await services.sessions.stop(request.params.id)),
    );
    api.post(
      '/api/v1/executions/:id/resume',
      { schema: { tags, summary: 'Run an ended session again from its latest checkpoint, same id and deadline', params: IdParams, body: Type.Optional(ResumeRequest), response: { 200: Session } } },
      async (request) => sessionToWire(await services.sessions.resume(request.params.id, { envVars: request.body?.env_vars })),
    );
  };
}
