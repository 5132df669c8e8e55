import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCgroupLayout, unescapeMountPath } from './layout.ts';

/** Mountinfo lines as the kernel writes them (fields: id parent dev root mountpoint opts [optional] - fstype source superopts). */
const V1_LINES = [
  '25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
  '31 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct',
  '33 31 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpuset',
  '34 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory',
  '35 31 0:32 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,devices',
  '36 31 0:33 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,freezer',
  '37 31 0:34 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,blkio',
  '38 31 0:35 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids',
  '39 31 0:36 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd',
];

/** This machine: v1 controllers plus an unified tree with no controllers in it. */
const HYBRID = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices',
  '37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
  '38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');

const PURE_V2 = [
  '22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
  '26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
  '28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro',
].join('\n');

const noV2 = (): string => {
  throw new Error('no v2 hierarchy should be read');
};

describe('parseCgroupLayout', () => {
  it('takes every controller from its own hierarchy on a pure v1 host (co-mounted cpu,cpuacct included)', () => {
    const layout = parseCgroupLayout(`${V1_LINES.join('\n')}\n`, noV2);
    assert.equal(layout.byController.cpu?.mountPoint, '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(layout.byController.memory?.mountPoint, '/sys/fs/cgroup/memory');
    assert.equal(layout.byController.pids?.mountPoint, '/sys/fs/cgroup/pids');
    assert.equal(layout.byController.freezer?.mountPoint, '/sys/fs/cgroup/freezer');
    for (const c of ['cpu', 'memory', 'pids', 'freezer'] as const) assert.equal(layout.byController[c]?.version, 1);
    assert.equal(layout.tracking, layout.byController.freezer, 'the freezer hierarchy tracks processes');
    // Only the hierarchies faas uses: not cpuset, devices, blkio or name=systemd.
    assert.deepEqual(layout.hierarchies.map((h) => h.mountPoint).sort(), ['/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/freezer', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids']);
    assert.match(layout.describe(), /^v1 \(/);
    assert.match(layout.describe(), /memory:v1 pids:v1 cpu:v1 freezer:v1/);
  });

  it('takes memory, pids and cpu from the unified tree on a pure v2 host, with freeze as a core feature', () => {
    const asked: string[] = [];
    const layout = parseCgroupLayout(PURE_V2, (mp) => {
      asked.push(mp);
      return 'cpuset cpu io memory hugetlb pids rdma misc\n';
    });
    assert.deepEqual(asked, ['/sys/fs/cgroup']);
    assert.equal(layout.hierarchies.length, 1);
    const v2 = layout.hierarchies[0]!;
    assert.equal(v2.version, 2);
    assert.equal(v2.mountPoint, '/sys/fs/cgroup');
    for (const c of ['cpu', 'memory', 'pids', 'freezer'] as const) assert.equal(layout.byController[c], v2, c);
    assert.equal(layout.tracking, v2);
    assert.match(layout.describe(), /^v2 \(memory:v2 pids:v2 cpu:v2 freezer:v2\)$/);
  });

  it('reports a v2 controller that is not enabled as unavailable', () => {
    const layout = parseCgroupLayout(PURE_V2, () => 'memory pids');
    assert.equal(layout.byController.cpu, undefined);
    assert.equal(layout.byController.memory?.version, 2);
    assert.match(layout.describe(), /cpu:none/);
  });

  it('prefers v1 controllers on a hybrid host like this one and leaves out an unused unified tree', () => {
    const layout = parseCgroupLayout(HYBRID, () => '');
    for (const c of ['cpu', 'memory', 'pids', 'freezer'] as const) {
      assert.equal(layout.byController[c]?.version, 1, c);
      assert.equal(layout.byController[c]?.mountPoint, `/sys/fs/cgroup/${c}`);
    }
    assert.equal(layout.tracking.mountPoint, '/sys/fs/cgroup/freezer');
    assert.ok(layout.hierarchies.every((h) => h.version === 1), 'the unified tree holds nothing faas uses');
    assert.equal(layout.hierarchies.length, 4);
  });

  it('takes a controller missing from v1 from the unified tree on a hybrid host and describes it as hybrid', () => {
    const withoutV1Pids = HYBRID.split('\n')
      .filter((l) => !l.includes('/sys/fs/cgroup/pids'))
      .join('\n');
    const layout = parseCgroupLayout(withoutV1Pids, (mp) => (mp === '/sys/fs/cgroup/unified' ? 'pids' : ''));
    assert.equal(layout.byController.pids?.version, 2);
    assert.equal(layout.byController.pids?.mountPoint, '/sys/fs/cgroup/unified');
    assert.equal(layout.byController.memory?.version, 1);
    assert.equal(layout.byController.freezer?.version, 1, 'the v1 freezer is preferred');
    assert.equal(layout.hierarchies.length, 4, "v1 cpu, memory, freezer and the unified tree");
    assert.match(layout.describe(), /^hybrid \(/);
  });

  it('uses the first unified tree when cgroup2 is mounted twice', () => {
    const twice = `${PURE_V2}\n90 26 0:24 / /mnt/other-cgroup2 rw,relatime - cgroup2 cgroup2 rw`;
    const layout = parseCgroupLayout(twice, () => 'memory pids cpu');
    assert.equal(layout.hierarchies.length, 1);
    assert.equal(layout.tracking.mountPoint, '/sys/fs/cgroup');
  });

  it('unescapes cgroup mount points that contain spaces', () => {
    const text = '32 31 0:29 / /sys/fs/cgroup/my\\040pids rw,relatime - cgroup cgroup rw,pids';
    const layout = parseCgroupLayout(text, noV2);
    assert.equal(layout.byController.pids?.mountPoint, '/sys/fs/cgroup/my pids');
  });

  it('throws naming what it looked for when no cgroup hierarchy is mounted', () => {
    const none = [
      '22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
      '28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro',
      '39 31 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
    ].join('\n');
    assert.throws(() => parseCgroupLayout(none, noV2), /no cgroup hierarchy is mounted/);
    assert.throws(() => parseCgroupLayout('', noV2), /no cgroup hierarchy is mounted/);
  });
});

describe('unescapeMountPath', () => {
  it('turns the octal escapes of mountinfo back into space, tab, newline and backslash', () => {
    assert.equal(unescapeMountPath('/a\\040b\\011c\\012d\\134e'), '/a b\tc\nd\\e');
  });

  it('leaves paths without escapes unchanged', () => {
    assert.equal(unescapeMountPath('/tmp/faas-x/instances/inst-1/merged'), '/tmp/faas-x/instances/inst-1/merged');
  });
});
