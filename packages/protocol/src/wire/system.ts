import { Type, type Static } from 'typebox';

export const RuntimeCapabilities = Type.Object({
  memory_snapshots: Type.Boolean(),
  network: Type.Array(Type.String(), { description: 'Network modes offered: "loopback" (no egress), later "egress".' }),
  pty: Type.Boolean(),
  limits: Type.Array(Type.String(), { description: 'Limits the runtime enforces: memory, pids, cpu.' }),
});
export type RuntimeCapabilities = Static<typeof RuntimeCapabilities>;

export const Health = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String(),
  runtime: Type.String(),
  capabilities: RuntimeCapabilities,
  uptime_ms: Type.Integer(),
});
export type Health = Static<typeof Health>;

const Percentiles = Type.Object({
  count: Type.Integer(),
  p50: Type.Union([Type.Number(), Type.Null()]),
  p90: Type.Union([Type.Number(), Type.Null()]),
  p99: Type.Union([Type.Number(), Type.Null()]),
});

export const MetricsSummary = Type.Object({
  uptime_ms: Type.Integer(),
  instances: Type.Object({ running: Type.Integer(), created_total: Type.Integer(), failed_total: Type.Integer() }),
  executions: Type.Object({
    running: Type.Integer(),
    started_total: Type.Integer(),
    by_exit_reason: Type.Record(Type.String(), Type.Integer()),
  }),
  latency_ms: Type.Object({
    instance_start: Percentiles,
    exec_start: Percentiles,
    execute_total: Percentiles,
  }, { description: 'Measured over the recent window (10 minutes).' }),
});
export type MetricsSummary = Static<typeof MetricsSummary>;
