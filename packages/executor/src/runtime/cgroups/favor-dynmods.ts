import { remount } from '../host-syscalls.ts';
import type { CgroupLayout, Hierarchy } from './layout.ts';

/**
 * Moving a process between cgroups takes a kernel-wide lock that, in its default mode, first
 * waits for an RCU grace period: ~6 ms on an idle host, paid on every instance start and every
 * exec. The `favordynmods` mount option (Linux 6.0+) keeps that lock ready for writers, making
 * a move ~0.3 ms, at a small cost to fork and exit. It is one flag for the whole kernel, set by
 * remounting any one hierarchy; faas sets it on start-up (opt out with FAAS_CGROUP_FAVOR_DYNMODS=0).
 *
 * Returns what it did, for the log: "already", "set on <mount>", or "unavailable: <why>".
 */
export function favorDynamicCgroupMoves(layout: CgroupLayout): string {
  if (layout.mounted.some((h) => h.options.includes('favordynmods'))) return 'already';
  // cgroup2 first: remounting it changes nothing else; a v1 remount must repeat its controllers.
  const candidates: Hierarchy[] = [...layout.mounted.filter((h) => h.version === 2), ...layout.mounted.filter((h) => h.version === 1)];
  const failures: string[] = [];
  for (const h of candidates) {
    const options = [...h.options.filter((o) => o !== 'rw' && o !== 'ro'), 'favordynmods'].join(',');
    try {
      remount(h.mountPoint, options);
      return `set on ${h.mountPoint}`;
    } catch (err) {
      failures.push(`${h.mountPoint}: ${(err as Error).message}`);
    }
  }
  return `unavailable: ${failures.join('; ') || 'no cgroup hierarchy'}`;
}
