import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The controllers faas uses. `freezer` is what makes tree kills and consistent snapshots race-free. */
export type Controller = 'memory' | 'pids' | 'cpu' | 'freezer';
export const CONTROLLERS: readonly Controller[] = ['memory', 'pids', 'cpu', 'freezer'];

/** One mounted cgroup hierarchy: a v1 hierarchy with its controllers, or the v2 unified one. */
export interface Hierarchy {
  version: 1 | 2;
  mountPoint: string;
  /** Superblock options as mounted (e.g. "rw,nsdelegate" or "rw,memory"). */
  options: readonly string[];
  /** Controllers usable in it (v2: listed in the root's cgroup.controllers; freeze/kill are core). */
  controllers: ReadonlySet<string>;
}

/**
 * Where each controller lives on this host. Hosts come in three layouts: pure v1 (one hierarchy
 * per controller or co-mounted), pure v2 (everything in the unified tree) and hybrid (v1
 * controllers plus an unified tree with few or none). A controller is taken from v1 when a v1
 * hierarchy has it, else from v2 when enabled there, else it is unavailable.
 */
export interface CgroupLayout {
  /** The hierarchies faas uses. */
  readonly hierarchies: readonly Hierarchy[];
  /** Every cgroup hierarchy mounted, used or not. */
  readonly mounted: readonly Hierarchy[];
  readonly byController: Readonly<Partial<Record<Controller, Hierarchy>>>;
  /** The hierarchy used to list and kill an exec's processes. */
  readonly tracking: Hierarchy;
  /** e.g. "hybrid: memory,pids,cpu,freezer on v1" */
  describe(): string;
}

interface MountLine {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function parseMountinfo(text: string): MountLine[] {
  const lines: MountLine[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fsType, , superOpts] = right.split(' ');
    if (fields[4] === undefined || fsType === undefined) continue;
    lines.push({ mountPoint: unescapeMountPath(fields[4]), fsType, superOptions: (superOpts ?? '').split(',') });
  }
  return lines;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
export function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseCgroupLayout(mountinfo: string, readV2Controllers: (mountPoint: string) => string): CgroupLayout {
  const hierarchies: Hierarchy[] = [];
  for (const m of parseMountinfo(mountinfo)) {
    if (m.fsType === 'cgroup') {
      const controllers = new Set(m.superOptions.filter((o) => (CONTROLLERS as readonly string[]).includes(o)));
      if (controllers.size > 0) hierarchies.push({ version: 1, mountPoint: m.mountPoint, options: m.superOptions, controllers });
    } else if (m.fsType === 'cgroup2') {
      if (hierarchies.some((h) => h.version === 2)) continue;
      const listed = readV2Controllers(m.mountPoint).trim().split(/\s+/).filter(Boolean);
      // freeze and kill are core files of every v2 group, not controllers.
      hierarchies.push({ version: 2, mountPoint: m.mountPoint, options: m.superOptions, controllers: new Set([...listed.filter((c) => c !== 'freezer'), 'freezer']) });
    }
  }
  const byController: Partial<Record<Controller, Hierarchy>> = {};
  for (const c of CONTROLLERS) {
    byController[c] = hierarchies.find((h) => h.version === 1 && h.controllers.has(c)) ?? hierarchies.find((h) => h.version === 2 && h.controllers.has(c));
  }
  const tracking = byController.freezer ?? byController.pids ?? hierarchies[0];
  if (tracking === undefined) throw new Error('no cgroup hierarchy is mounted (looked for cgroup and cgroup2 in /proc/self/mountinfo)');
  const used = new Set(Object.values(byController));
  const layout = {
    hierarchies: hierarchies.filter((h) => used.has(h)),
    mounted: hierarchies,
    byController,
    tracking,
    describe(): string {
      const versions = new Set(layout.hierarchies.map((h) => h.version));
      const kind = versions.size === 2 ? 'hybrid' : versions.has(2) ? 'v2' : 'v1';
      const parts = CONTROLLERS.map((c) => `${c}:${byController[c] ? `v${byController[c]!.version}` : 'none'}`);
      return `${kind} (${parts.join(' ')})`;
    },
  };
  return layout;
}

export function detectCgroupLayout(): CgroupLayout {
  return parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'), (mp) => {
    try {
      return readFileSync(join(mp, 'cgroup.controllers'), 'utf8');
    } catch {
      return '';
    }
  });
}
