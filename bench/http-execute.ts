/**
 * HTTP execute: `POST /api/v1/execute {"code": "echo hi"}` end to end against a real server on
 * loopback (fresh instance, run, result, instance destroyed after), sequentially, against raw
 * bwrap running `/bin/sh -c 'echo hi'`.
 */
import { startTestServer } from '../packages/executor/test/fixtures/test-server.ts';
import { RawBwrap } from './lib/baseline.ts';
import { removeServerTraces } from './lib/faas.ts';
import { Failures } from './lib/failures.ts';
import { envInt, ms, now, printTable, ratio, section, summarize, SUMMARY_HEADERS, summaryCells, verdict } from './lib/stats.ts';

const WARMUP = 10;
/** Issue target: HTTP execute p50 under 30 ms. */
const TARGET_P50_MS = 30;

/** One POST /api/v1/execute; Node's fetch keeps the connection alive between calls (undici pool). */
export async function postExecute(url: string, apiKey: string): Promise<{ ms: number; durationMs: number }> {
  const t0 = now();
  const res = await fetch(`${url}/api/v1/execute`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'echo hi' }),
  });
  const body = (await res.json()) as { stdout?: string; exit_code?: number | null; duration_ms?: number | null };
  const elapsed = now() - t0;
  if (res.status !== 200 || body.stdout !== 'hi\n' || body.exit_code !== 0) {
    throw new Error(`POST /api/v1/execute answered ${res.status}: ${JSON.stringify(body).slice(0, 500)}`);
  }
  return { ms: elapsed, durationMs: body.duration_ms ?? Number.NaN };
}

export async function rawEchoHi(raw: RawBwrap): Promise<number> {
  const r = await raw.run(['/bin/sh', '-c', 'echo hi']);
  if (r.stdout !== 'hi\n') throw new Error(`raw bwrap printed ${JSON.stringify(r.stdout)}`);
  return r.ms;
}

export async function httpExecute(): Promise<void> {
  const n = envInt('BENCH_N', 200);
  section(`HTTP execute: POST /api/v1/execute {"code":"echo hi"}, sequential, keep-alive (N=${n})`);
  const raw = RawBwrap.prepare();
  const server = await startTestServer();
  try {
    const rawMs: number[] = [];
    const faasMs: number[] = [];
    const processMs: number[] = [];
    const failures = new Failures('faas POST /execute', Math.max(5, Math.ceil(n / 10)));
    const runFaas = async (keep = true) => {
      try {
        const r = await postExecute(server.url, server.apiKey);
        if (!keep) return;
        faasMs.push(r.ms);
        processMs.push(r.durationMs);
      } catch (err) {
        failures.record(err);
      }
    };
    for (let i = 0; i < WARMUP; i++) {
      await rawEchoHi(raw);
      await runFaas(false);
    }
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) {
        rawMs.push(await rawEchoHi(raw));
        await runFaas();
      } else {
        await runFaas();
        rawMs.push(await rawEchoHi(raw));
      }
    }
    const r = summarize(rawMs);
    const f = summarize(faasMs);
    console.log('');
    printTable(['series', ...SUMMARY_HEADERS], [
      ["raw bwrap sh -c 'echo hi' (baseline)", ...summaryCells(r)],
      ['faas POST /execute, end to end', ...summaryCells(f)],
      ['  duration_ms in the response', ...summaryCells(summarize(processMs))],
    ]);
    failures.print(n + WARMUP);
    console.log('');
    printTable(['ratio faas/raw', 'p50', 'p99'], [['HTTP execute echo hi', ratio(f.p50, r.p50), ratio(f.p99, r.p99)]]);
    console.log('');
    printTable(['target', 'measured', 'result'], [[`HTTP execute p50 < ${TARGET_P50_MS} ms`, `${ms(f.p50)} ms`, verdict(f.p50 < TARGET_P50_MS)]]);
  } finally {
    await server.close();
    removeServerTraces(server.dataDir);
    raw.close();
  }
}
