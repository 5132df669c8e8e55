/** Summary statistics over samples in milliseconds, and a plain-text table printer. */

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
}

/**
 * The p-th percentile (0..100) of ascending `sorted` samples, interpolating linearly between
 * the two nearest ranks (numpy's default). With 200 samples p99 sits between the 2nd and 3rd
 * largest, so it reflects the tail without being a single outlier.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (rank - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / (sorted.length || Number.NaN);
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** Milliseconds with two decimals. */
export function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : 'n/a';
}

/** `a / b` as "1.23x". */
export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a';
}

export function verdict(ok: boolean): 'PASS' | 'MISS' {
  return ok ? 'PASS' : 'MISS';
}

/** The usual columns for one series of samples. */
export const SUMMARY_HEADERS = ['n', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'min ms', 'max ms'];

export function summaryCells(s: Summary): string[] {
  return [String(s.n), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.mean), ms(s.min), ms(s.max)];
}

/**
 * Prints an aligned table: the first column left-aligned (labels), the others right-aligned
 * (figures), with a rule under the header.
 */
export function printTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>, indent = '  '): void {
  const cells = [headers.map(String), ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, col) => Math.max(...cells.map((r) => (r[col] ?? '').length)));
  const line = (r: readonly string[]) => indent + r.map((c, col) => (col === 0 ? c.padEnd(widths[col]!) : c.padStart(widths[col]!))).join('  ').trimEnd();
  console.log(line(cells[0]!));
  console.log(indent + widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) console.log(line(r));
}

export function section(title: string): void {
  console.log('');
  console.log(`== ${title} ${'='.repeat(Math.max(0, 74 - title.length))}`);
}

export function now(): number {
  return performance.now();
}

/** Env var as a positive integer, else the default. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** Times `n` sequential awaited calls of `fn` (after `warmup` untimed ones) and summarizes them. */
export async function timeSeries(n: number, fn: (i: number) => Promise<unknown>, warmup = 0): Promise<Summary> {
  for (let i = 0; i < warmup; i++) await fn(i);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await fn(i);
    samples.push(now() - t0);
  }
  return summarize(samples);
}
