/**
 * Where the time of one sample goes, for the profiling pass of the cold-start bench.
 *
 * The source is not edited for benchmarks, so this wraps methods on the live objects (the
 * runtime, its cgroup driver and host environment, the store's repositories) and records each
 * call as a time interval. Nesting is not hard-coded: within a sample (one logical flow, run
 * alone), a call's parent is the tightest recorded interval that contains it, so the tree follows
 * the code as it is today. For each node with children a "rest" row shows what the timed
 * calls leave over, so means add up. Method names are internals: a missing one is listed
 * as not instrumented instead of failing the bench. Headline figures are measured without this.
 */
import { ms, now, summarize } from './stats.ts';

interface Interval {
  label: string;
  start: number;
  end: number;
  index: number;
}

interface PathStats {
  label: string;
  depth: number;
  parent: string | undefined;
  /** Per sample: summed duration (0 when the call did not happen in that sample). */
  values: number[];
  /** Mean start offset from the sample's start, to order siblings. */
  offsets: number[];
}

export interface Phase {
  label: string;
  start: number;
  end: number;
}

export class Profiler {
  private spans: Interval[] | undefined;
  private counter = 0;
  private samples = 0;
  private readonly paths = new Map<string, PathStats>();
  private readonly notes = new Map<string, number[]>();
  readonly missing: string[] = [];

  begin(): void {
    this.spans = [];
  }

  /** Drops the open sample (it failed). */
  abort(): void {
    this.spans = undefined;
  }

  /** A figure reported beside the tree (not part of it), e.g. a duration the code measured itself. */
  note(label: string, value: number): void {
    if (this.spans === undefined) return;
    const list = this.notes.get(label) ?? [];
    list.push(value);
    this.notes.set(label, list);
  }

  /** Times every call of `target[method]` (sync or async) as an interval labelled `label`. */
  wrap(target: unknown, method: string, label: string, after?: (result: unknown) => unknown): boolean {
    const obj = target as Record<string, unknown> | undefined;
    const orig = obj?.[method];
    if (typeof orig !== 'function') {
      if (!this.missing.includes(label)) this.missing.push(label);
      return false;
    }
    const profiler = this;
    obj![method] = function (this: unknown, ...args: unknown[]) {
      const start = now();
      const index = profiler.counter++;
      const record = () => profiler.spans?.push({ label, start, end: now(), index });
      const result = (orig as (...a: unknown[]) => unknown).apply(this, args);
      if (result instanceof Promise) {
        return result.then(
          (value) => {
            record();
            return after ? after(value) : value;
          },
          (err: unknown) => {
            record();
            throw err;
          },
        );
      }
      record();
      return after ? after(result) : result;
    };
    return true;
  }

  /** Closes the sample: `root` spans it, `phases` split it; every recorded call nests below. */
  end(root: Phase, phases: Phase[]): void {
    const spans = this.spans;
    this.spans = undefined;
    if (spans === undefined) return;
    // Root and phases win ties: they are parents of a call spanning exactly the same time.
    const all: Interval[] = [{ ...root, index: -1000 }, ...phases.map((p, i) => ({ ...p, index: -999 + i })), ...spans];
    const parentOf = (s: Interval): Interval | undefined => {
      let best: Interval | undefined;
      for (const c of all) {
        if (c === s || c.start > s.start || c.end < s.end) continue;
        const cLen = c.end - c.start;
        const sLen = s.end - s.start;
        if (cLen < sLen || (cLen === sLen && c.index > s.index)) continue;
        if (best === undefined || cLen < best.end - best.start || (cLen === best.end - best.start && c.index > best.index)) best = c;
      }
      return best;
    };
    const pathOf = new Map<Interval, string>();
    const resolve = (s: Interval): string => {
      const known = pathOf.get(s);
      if (known !== undefined) return known;
      const parent = parentOf(s);
      const path = parent === undefined ? s.label : `${resolve(parent)}\u0000${s.label}`;
      pathOf.set(s, path);
      return path;
    };
    const sums = new Map<string, { total: number; offset: number; parent: string | undefined; label: string }>();
    for (const s of all) {
      const path = resolve(s);
      const parent = parentOf(s);
      const entry = sums.get(path) ?? { total: 0, offset: s.start - root.start, parent: parent && resolve(parent), label: s.label };
      entry.total += s.end - s.start;
      sums.set(path, entry);
    }
    for (const [path, e] of sums) {
      let stats = this.paths.get(path);
      if (stats === undefined) {
        stats = { label: e.label, depth: path.split('\u0000').length - 1, parent: e.parent, values: new Array<number>(this.samples).fill(0), offsets: [] };
        this.paths.set(path, stats);
      }
      stats.values.push(e.total);
      stats.offsets.push(e.offset);
    }
    this.samples++;
    for (const stats of this.paths.values()) while (stats.values.length < this.samples) stats.values.push(0);
  }

  get sampleCount(): number {
    return this.samples;
  }

  /** Rows [label, p50, mean, % of root mean] in tree order, with "rest" rows. */
  rows(): string[][] {
    const children = new Map<string | undefined, string[]>();
    for (const [path, s] of this.paths) children.set(s.parent, [...(children.get(s.parent) ?? []), path]);
    const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / (xs.length || Number.NaN);
    const roots = children.get(undefined) ?? [];
    const rootMean = roots.length > 0 ? meanOf(this.paths.get(roots[0]!)!.values) : Number.NaN;
    const out: string[][] = [];
    const row = (depth: number, label: string, values: number[]) => {
      const m = meanOf(values);
      out.push([`${'  '.repeat(depth)}${label}`, ms(summarize(values).p50), ms(m), `${((100 * m) / rootMean).toFixed(1)}%`]);
    };
    const visit = (path: string) => {
      const s = this.paths.get(path)!;
      row(s.depth, s.label, s.values);
      const kids = (children.get(path) ?? []).sort((a, b) => meanOf(this.paths.get(a)!.offsets) - meanOf(this.paths.get(b)!.offsets));
      kids.forEach(visit);
      if (kids.length > 0) {
        const rest = s.values.map((v, i) => v - kids.reduce((sum, k) => sum + this.paths.get(k)!.values[i]!, 0));
        // Phases that tile their parent leave nothing over: no row for that.
        if (rest.some((v) => Math.abs(v) >= 0.01)) row(s.depth + 1, 'rest (outside the timed calls)', rest);
      }
    };
    roots.forEach(visit);
    for (const [label, values] of this.notes) row(0, `(info) ${label}`, values);
    return out;
  }
}
