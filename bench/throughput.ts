/**
 * Throughput: C concurrent ephemeral executions (`echo hi`) through HTTP, R rounds, against C
 * concurrent raw bwrap `sh -c 'echo hi'` runs started from Node. Rounds alternate which side
 * goes first; between rounds the server is left to finish destroying its instances.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../packages/executor/test/fixtures/test-server.ts';
import { RawBwrap } from './lib/baseline.ts';
import { removeServerTraces } from './lib/faas.ts';
import { Failures } from './lib/failures.ts';
import { envInt, ms, now, printTable, ratio, section, summarize } from './lib/stats.ts';
import { postExecute, rawEchoHi } from './http-execute.ts';

interface Round {
  wallMs: number;
  perSecond: number;
  p50: number;
  p99: number;
  /** Share of the round's wall time this process's event loop was busy (0..1); client and server share it. */
  elu: number;
  /** Longest event-loop stall seen during the round. */
  maxStallMs: number;
}

/** One round of `concurrency` calls at once; exec/s counts the successful ones. */
async function round(concurrency: number, once: () => Promise<number>, failures: Failures): Promise<Round> {
  const stalls = monitorEventLoopDelay({ resolution: 1 });
  stalls.enable();
  const elu0 = performance.eventLoopUtilization();
  const t0 = now();
  const latencies = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const start = now();
      try {
        await once();
        return now() - start;
      } catch (err) {
        failures.record(err);
        return undefined;
      }
    }),
  );
  const wallMs = now() - t0;
  const elu = performance.eventLoopUtilization(elu0).utilization;
  stalls.disable();
  const ok = latencies.filter((x): x is number => x !== undefined);
  const s = summarize(ok);
  return { wallMs, perSecond: (ok.length * 1000) / wallMs, p50: s.p50, p99: s.p99, elu, maxStallMs: stalls.max / 1e6 };
}

/** Waits until the server has no instance left starting or running (ephemeral ones are destroyed after their result). */
async function settle(server: TestServer): Promise<number> {
  const t0 = now();
  const deadline = Date.now() + 60_000;
  for (;;) {
    let alive = 0;
    for (const state of ['starting', 'running']) {
      const res = await server.request('GET', `/api/v1/instances?state=${state}&limit=1000`);
      alive += (res.body as { instances: unknown[] }).instances.length;
    }
    if (alive === 0) return now() - t0;
    if (Date.now() > deadline) throw new Error(`${alive} instances still alive 60 s after a round`);
    await sleep(20);
  }
}

export async function throughput(): Promise<void> {
  const concurrency = envInt('BENCH_CONCURRENCY', 50);
  const rounds = envInt('BENCH_ROUNDS', 3);
  section(`throughput: ${concurrency} concurrent ephemeral executions of \`echo hi\` via HTTP, ${rounds} rounds`);
  const raw = RawBwrap.prepare();
  const server = await startTestServer();
  try {
    const faasOnce = async () => (await postExecute(server.url, server.apiKey)).ms;
    const rawOnce = () => rawEchoHi(raw);
    const limit = Math.max(5, Math.ceil((concurrency * rounds) / 10));
    const rawFailures = new Failures('raw bwrap', limit);
    const faasFailures = new Failures('faas POST /execute', limit);
    const warm = Math.min(10, concurrency);
    // Warm-up: a smaller round of each (also opens the keep-alive connections).
    await round(warm, rawOnce, rawFailures);
    await round(warm, faasOnce, faasFailures);
    await settle(server);
    const rawRounds: Round[] = [];
    const faasRounds: Round[] = [];
    const tails: number[] = [];
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        rawRounds.push(await round(concurrency, rawOnce, rawFailures));
        faasRounds.push(await round(concurrency, faasOnce, faasFailures));
        tails.push(await settle(server));
      } else {
        faasRounds.push(await round(concurrency, faasOnce, faasFailures));
        tails.push(await settle(server));
        rawRounds.push(await round(concurrency, rawOnce, rawFailures));
      }
    }
    const rows: string[][] = [];
    for (let i = 0; i < rounds; i++) {
      for (const [label, rr] of [['raw bwrap', rawRounds[i]!], ['faas HTTP', faasRounds[i]!]] as const) {
        rows.push([`round ${i + 1} ${label}`, ms(rr.wallMs), rr.perSecond.toFixed(1), ms(rr.p50), ms(rr.p99), `${Math.round(rr.elu * 100)}%`, ms(rr.maxStallMs)]);
      }
    }
    console.log('');
    printTable(['round', 'wall ms', 'exec/s', 'p50 ms', 'p99 ms', 'loop busy', 'max stall ms'], rows);
    console.log(`  after each faas round, its last instances were destroyed ${tails.map((t) => ms(t)).join(' / ')} ms after the last response (untimed)`);
    rawFailures.print(warm + concurrency * rounds);
    faasFailures.print(warm + concurrency * rounds);
    const med = (xs: Round[], k: keyof Round) => summarize(xs.map((x) => x[k])).p50;
    console.log('');
    printTable(['ratio faas/raw (median of rounds)', 'wall', 'exec/s', 'p50', 'p99'], [
      [
        `${concurrency} concurrent echo hi`,
        ratio(med(faasRounds, 'wallMs'), med(rawRounds, 'wallMs')),
        ratio(med(faasRounds, 'perSecond'), med(rawRounds, 'perSecond')),
        ratio(med(faasRounds, 'p50'), med(rawRounds, 'p50')),
        ratio(med(faasRounds, 'p99'), med(rawRounds, 'p99')),
      ],
    ]);
  } finally {
    await server.close();
    removeServerTraces(server.dataDir);
    raw.close();
  }
}
