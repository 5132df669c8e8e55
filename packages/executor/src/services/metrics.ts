import { Counter, Gauge, Registry, Summary, collectDefaultMetrics } from 'prom-client';
import type { MetricsSummary } from '@faas/protocol';

const WINDOW_SECONDS = 600;
const PERCENTILES = [0.5, 0.9, 0.99];

/**
 * The server's measurements, one registry per app (never prom-client's global one, so several
 * servers can live in one process, as tests do). Latencies are Summaries over a sliding
 * 10-minute window: the same numbers feed Prometheus and the JSON summary.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly instancesCreated = new Counter({ name: 'faas_instances_created_total', help: 'Instances started', registers: [this.registry] });
  readonly instancesFailed = new Counter({ name: 'faas_instances_failed_total', help: 'Instances that failed to start or died on their own', registers: [this.registry] });
  readonly instancesRunning = new Gauge({ name: 'faas_instances_running', help: 'Instances running now', registers: [this.registry] });
  readonly executionsStarted = new Counter({ name: 'faas_executions_started_total', help: 'Executions started', registers: [this.registry] });
  readonly executionsFinished = new Counter({ name: 'faas_executions_finished_total', help: 'Executions finished, by exit reason', labelNames: ['exit_reason'] as const, registers: [this.registry] });
  readonly executionsRunning = new Gauge({ name: 'faas_executions_running', help: 'Executions running now', registers: [this.registry] });
  readonly instanceStart = this.latency('faas_instance_start_seconds', 'Time to start an instance (runtime work, measured)');
  readonly execStart = this.latency('faas_exec_start_seconds', 'Time from an exec request to its process running');
  readonly snapshotsCreated = new Counter({ name: 'faas_snapshots_created_total', help: 'Snapshots committed', registers: [this.registry] });
  readonly snapshotCapture = this.latency('faas_snapshot_capture_seconds', 'Time to capture a snapshot, freeze to commit');
  readonly executeTotal = this.latency('faas_execute_seconds', 'Whole POST /execute: create, run, result');
  readonly poolHits = new Counter({ name: 'faas_pool_hits_total', help: 'Creates served from a warm pool', labelNames: ['env'] as const, registers: [this.registry] });
  readonly poolMisses = new Counter({ name: 'faas_pool_misses_total', help: 'Creates served cold while the environment had a warm pool', labelNames: ['env'] as const, registers: [this.registry] });
  readonly poolStartFailures = new Counter({ name: 'faas_pool_start_failures_total', help: 'Pooled instances that failed to start', labelNames: ['env'] as const, registers: [this.registry] });
  readonly sshLogins = new Counter({ name: 'faas_ssh_logins_total', help: 'SSH login attempts decided by the gateway, by result (ok, failed)', labelNames: ['result'] as const, registers: [this.registry] });
  readonly sshConnections = new Gauge({ name: 'faas_ssh_connections', help: 'SSH connections open now, logged in or not', registers: [this.registry] });
  /** Whole InstanceService.create, by source: warm (from a pool) or cold (started for the request). */
  readonly instanceAcquire = new Summary({
    name: 'faas_instance_acquire_seconds',
    help: 'Time for a create to return a running instance, warm (pool) or cold',
    labelNames: ['source'] as const,
    percentiles: PERCENTILES,
    maxAgeSeconds: WINDOW_SECONDS,
    ageBuckets: 5,
    registers: [this.registry],
  });
  private readonly startedAt = Date.now();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'faas_process_' });
  }

  async summary(): Promise<MetricsSummary> {
    const byReason: Record<string, number> = {};
    for (const v of (await this.executionsFinished.get()).values) byReason[String(v.labels.exit_reason)] = v.value;
    return {
      uptime_ms: Date.now() - this.startedAt,
      instances: {
        running: await gaugeValue(this.instancesRunning),
        created_total: await gaugeValue(this.instancesCreated),
        failed_total: await gaugeValue(this.instancesFailed),
      },
      executions: {
        running: await gaugeValue(this.executionsRunning),
        started_total: await gaugeValue(this.executionsStarted),
        by_exit_reason: byReason,
      },
      latency_ms: {
        instance_start: await percentiles(this.instanceStart),
        exec_start: await percentiles(this.execStart),
        execute_total: await percentiles(this.executeTotal),
      },
    };
  }

  /**
   * Acquisition latency split warm/cold, in the JSON summary's shape. Not in MetricsSummary yet
   * (the protocol schema would strip it); exposed for when it is.
   */
  async acquireLatency(): Promise<Record<'warm' | 'cold', MetricsSummary['latency_ms']['instance_start']>> {
    const values = (await this.instanceAcquire.get()).values;
    const pick = (source: string) => {
      const mine = values.filter((v) => v.labels.source === source);
      const at = (q: number) => {
        const v = mine.find((x) => (x.labels as Record<string, unknown>).quantile === q)?.value;
        return v === undefined || Number.isNaN(v) ? null : Math.round(v * 1e6) / 1e3;
      };
      const count = mine.find((x) => x.metricName?.endsWith('_count'))?.value ?? 0;
      return { count, p50: count > 0 ? at(0.5) : null, p90: count > 0 ? at(0.9) : null, p99: count > 0 ? at(0.99) : null };
    };
    return { warm: pick('warm'), cold: pick('cold') };
  }

  private latency(name: string, help: string): Summary {
    return new Summary({ name, help, percentiles: PERCENTILES, maxAgeSeconds: WINDOW_SECONDS, ageBuckets: 5, registers: [this.registry] });
  }
}

async function gaugeValue(metric: Counter | Gauge): Promise<number> {
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function percentiles(summary: Summary): Promise<MetricsSummary['latency_ms']['instance_start']> {
  const values = (await summary.get()).values;
  const at = (q: number) => {
    const v = values.find((x) => x.labels.quantile === q)?.value;
    return v === undefined || Number.isNaN(v) ? null : Math.round(v * 1e6) / 1e3;
  };
  const count = values.find((x) => x.metricName?.endsWith('_count'))?.value ?? 0;
  return { count, p50: count > 0 ? at(0.5) : null, p90: count > 0 ? at(0.9) : null, p99: count > 0 ? at(0.99) : null };
}
