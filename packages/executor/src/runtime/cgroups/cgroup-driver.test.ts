import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CgroupDriver, INIT_GROUP } from './cgroup-driver.ts';
import { detectCgroupLayout, parseCgroupLayout, type CgroupLayout } from './layout.ts';

const JOIN = 'p=$$; while [ "$1" != -- ]; do echo $p > "$1" || exit 125; shift; done; shift; exec "$@"';

/** Starts `sh -c script` inside the group's cgroups (as the runtime does) and resolves once it runs. */
function startInGroup(procsFiles: string[], script: string) {
  const child = spawn('/bin/sh', ['-c', JOIN, 'join', ...procsFiles, '--', '/bin/sh', '-c', script], { stdio: 'ignore' });
  const exited = new Promise<string | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  return { child, exited };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function driverSuite(name: string, layout: CgroupLayout) {
  describe(`CgroupDriver on ${name}`, () => {
    const driver = new CgroupDriver(layout, `faas-cgtest-${process.pid}-${name.replace(/\W/g, '')}`);
    driver.setUp();
    after(() => driver.tearDown());
    const limits = { memoryMb: 64, cpuCores: 0.5, pidsMax: 32 };

    it('tracks every process of an exec group and kills the whole tree at once', async () => {
      const inst = 'inst-a';
      driver.createInstanceGroup(inst, limits);
      const procs = await driver.createExecGroup(inst, 'exec-1');
      const { exited } = startInGroup(procs, 'sleep 100 & sleep 100 & exec sleep 100');
      await until(() => driver.pids(inst, 'exec-1').length === 3, 'three processes in the exec group');
      const expected = layout.tracking.version === 2 ? ['exec-1', INIT_GROUP] : ['exec-1'];
      assert.equal(driver.subgroups(inst).sort().join(','), expected.sort().join(','));
      await driver.kill(inst, 'exec-1');
      assert.equal(await exited, 'SIGKILL');
      await until(() => driver.pids(inst, 'exec-1').length === 0, 'an empty exec group');
      assert.equal(await driver.removeGroup(inst, 'exec-1'), true);
      await driver.destroyInstanceGroup(inst);
      for (const h of layout.hierarchies) assert.equal(existsSync(join(h.mountPoint, driver.prefix, inst)), false);
    });

    it('a signal other than SIGKILL spares the given launcher pid', async () => {
      const inst = 'inst-b';
      driver.createInstanceGroup(inst, limits);
      const procs = await driver.createExecGroup(inst, 'exec-2');
      const a = startInGroup(procs, 'exec sleep 100');
      const b = startInGroup(procs, 'exec sleep 100');
      await until(() => driver.pids(inst, 'exec-2').length === 2, 'two processes');
      driver.signal(inst, 'exec-2', 'SIGTERM', a.child.pid);
      assert.equal(await b.exited, 'SIGTERM');
      assert.deepEqual(driver.pids(inst, 'exec-2'), [a.child.pid]);
      await driver.destroyInstanceGroup(inst);
      assert.equal(await a.exited, 'SIGKILL');
    });

    it('destroying an instance group kills processes in its init and exec groups and removes them', async () => {
      const inst = 'inst-c';
      driver.createInstanceGroup(inst, limits);
      const init = startInGroup(driver.procsFiles(inst, INIT_GROUP), 'exec sleep 100');
      const exec = startInGroup(await driver.createExecGroup(inst, 'exec-3'), 'sleep 100 & exec sleep 100');
      await until(() => driver.allPids(inst).length === 3, 'three processes in the instance');
      assert.ok(driver.instanceGroups().includes(inst));
      await driver.destroyInstanceGroup(inst);
      assert.equal(await init.exited, 'SIGKILL');
      assert.equal(await exec.exited, 'SIGKILL');
      assert.ok(!driver.instanceGroups().includes(inst));
    });
  });
}

const hostLayout = detectCgroupLayout();
driverSuite(hostLayout.describe(), hostLayout);

// The unified (v2) tree of this host, alone: exercises cgroup.kill and the v2 paths even on a hybrid host.
const v2Line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => / - cgroup2 /.test(l));
if (v2Line !== undefined) {
  driverSuite('v2-only', parseCgroupLayout(v2Line, (mp) => readFileSync(join(mp, 'cgroup.controllers'), 'utf8')));
}

describe('limits', () => {
  it('writes memory, pids and CPU limits where the host has those controllers', async () => {
    const driver = new CgroupDriver(hostLayout, `faas-cgtest-${process.pid}-limits`);
    driver.setUp();
    driver.createInstanceGroup('inst-l', { memoryMb: 64, cpuCores: 0.5, pidsMax: 32 });
    try {
      const mem = hostLayout.byController.memory;
      if (mem?.version === 1) assert.equal(readFileSync(join(mem.mountPoint, driver.prefix, 'inst-l', 'memory.limit_in_bytes'), 'utf8').trim(), String(64 * 1024 * 1024));
      if (mem?.version === 2) assert.equal(readFileSync(join(mem.mountPoint, driver.prefix, 'inst-l', 'memory.max'), 'utf8').trim(), String(64 * 1024 * 1024));
      const pids = hostLayout.byController.pids;
      if (pids) assert.equal(readFileSync(join(pids.mountPoint, driver.prefix, 'inst-l', 'pids.max'), 'utf8').trim(), '32');
      const cpu = hostLayout.byController.cpu;
      if (cpu?.version === 1) assert.equal(readFileSync(join(cpu.mountPoint, driver.prefix, 'inst-l', 'cpu.cfs_quota_us'), 'utf8').trim(), '50000');
      assert.ok(driver.enforcedLimits.length > 0, 'this host enforces at least one limit');
    } finally {
      await driver.destroyInstanceGroup('inst-l');
      driver.tearDown();
    }
  });
});
