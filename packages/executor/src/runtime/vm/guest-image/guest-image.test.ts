import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isFaasError } from '@faas/protocol';
import { buildGuestImage, checkGuestImageHost, ensureGuestImage, type GuestImage } from './build-guest-image.ts';
import { createDataDisk } from './data-disk.ts';
import { readInstalledPackages, resolvePackageClosure } from './package-set.ts';

const missing = checkGuestImageHost();
const skip = process.getuid?.() !== 0 ? 'needs root (the image holds root- and uid-1000-owned files)' : missing.length > 0 ? `missing host packages: ${missing.join(' ')}` : false;

/**
 * Test agent: checks the guest from inside, prints one `FAAS-TEST {json}` line on the console,
 * syncs (a sysrq power-off does not flush the page cache) and powers the machine off.
 */
const CHECK_AGENT = `import json, os, socket, subprocess
os.environ['PATH'] = '/usr/bin:/usr/sbin'
def out(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return (p.stdout + p.stderr).strip()
r = {'pid': os.getpid()}
try:
    r['py'] = out(['/usr/bin/python3', '-c', 'print(1)'])
    r['id'] = out(['id', 'user'])
    r['hostname'] = socket.gethostname()
    r['workspace_uid'] = os.stat('/workspace').st_uid
    r['mounts'] = [l.split()[1] for l in open('/proc/mounts')]
    r['controllers'] = open('/sys/fs/cgroup/cgroup.subtree_control').read().split()
    r['lo_flags'] = int(open('/sys/class/net/lo/flags').read(), 16)
    r['base_marker'] = os.path.exists('/base-marker')
    r['tools'] = out(['sh', '-c', 'for t in sh cat ps sleep id tty stty setsid timeout sync bash; do command -v $t >/dev/null || echo missing-$t; done'])
    try:
        open('/usr/should-fail', 'w')
        r['usr_writable'] = True
    except OSError:
        r['usr_writable'] = False
    os.makedirs('/workspace/from-guest', exist_ok=True)
except Exception as e:
    r['error'] = repr(e)
with open('/dev/console', 'w') as c:
    c.write('FAAS-TEST ' + json.dumps(r) + '\\n')
os.sync()
with open('/proc/sysrq-trigger', 'w') as t:
    t.write('o')
`;

interface BootResult {
  report: Record<string, unknown> | undefined;
  console: string;
  ms: number;
}

/** Boots the image under TCG with a data disk and returns what the test agent reported. */
function boot(image: GuestImage, dataDisk: string, hostname: string): Promise<BootResult> {
  const started = Date.now();
  // prettier-ignore
  const args = ['-accel', 'tcg', '-M', 'pc', '-m', '256', '-nographic', '-no-reboot', '-kernel', image.kernel, '-initrd', image.initrd,
    '-append', `console=ttyS0 panic=-1 quiet faas.hostname=${hostname}`,
    '-drive', `file=${image.systemDisk},if=virtio,format=raw,readonly=on`, '-drive', `file=${dataDisk},if=virtio,format=raw`];
  return new Promise((resolve, reject) => {
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let reportMs = 0;
    qemu.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (reportMs === 0 && output.includes('FAAS-TEST ')) reportMs = Date.now() - started;
    });
    qemu.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => qemu.kill('SIGKILL'), 90_000);
    qemu.on('error', reject);
    qemu.on('close', () => {
      clearTimeout(timer);
      const line = output.split(/\r?\n/).find((l) => l.includes('FAAS-TEST '));
      const report = line === undefined ? undefined : (JSON.parse(line.slice(line.indexOf('FAAS-TEST ') + 10)) as Record<string, unknown>);
      resolve({ report, console: output, ms: reportMs });
    });
  });
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('guest image', { skip }, () => {
  let work: string;
  let agentPath: string;
  let image: GuestImage;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'faas-guest-image-'));
    agentPath = join(work, 'agent.py');
    writeFileSync(agentPath, CHECK_AGENT);
    image = await buildGuestImage({ outDir: join(work, 'a'), agentPath });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('two builds give byte-identical kernel, initramfs and system disk', async () => {
    const second = await buildGuestImage({ outDir: join(work, 'b'), agentPath });
    for (const key of ['kernel', 'initrd', 'systemDisk'] as const) assert.equal(sha256(second[key]), sha256(image[key]), `${key} differs between builds`);
    assert.equal(second.id, image.id);
    assert.match(image.id, /^[0-9a-f]{64}$/);
    rmSync(join(work, 'b'), { recursive: true, force: true });
  });

  test('the host skeleton is owned as in the guest: root, and uid 1000 for home and workspace', () => {
    for (const dir of ['home/user', 'workspace']) {
      const st = statSync(join(image.skeleton, dir));
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1000, 1000, 0o755], dir);
    }
    assert.equal(statSync(join(image.skeleton, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(statSync(join(image.skeleton, 'root')).mode & 0o7777, 0o700);
    assert.equal(statSync(join(image.skeleton, 'etc/passwd')).uid, 0);
    assert.match(readFileSync(join(image.skeleton, 'etc/passwd'), 'utf8'), /^user:x:1000:1000:/m);
  });

  test('the system disk holds /usr, /skel and the agent, and stays small', () => {
    const listing = execFileSync('debugfs', ['-R', 'ls -p /usr/lib/faas', image.systemDisk], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(listing, /\/100644\/0\/0\/agent\.py\//);
    const root = execFileSync('debugfs', ['-R', 'ls -p /skel', image.systemDisk], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(root, /\/0?40755\/1000\/1000\/workspace\//);
    assert.ok(statSync(image.systemDisk).size < 300 * 1024 * 1024, `system disk is ${statSync(image.systemDisk).size} bytes`);
  });

  test('the image boots: agent is PID 1 with python, user, hostname, mounts, cgroups and lo', async () => {
    const data = join(work, 'data.img');
    createDataDisk(data, 1024 ** 3);
    const { report, console: out, ms } = await boot(image, data, 't1');
    assert.ok(report, `no FAAS-TEST line on the console:\n${out.slice(-3000)}`);
    assert.equal(report.error, undefined);
    assert.equal(report.pid, 1);
    assert.equal(report.py, '1');
    assert.match(String(report.id), /^uid=1000\(user\) gid=1000\(user\)/);
    assert.equal(report.hostname, 't1');
    assert.equal(report.workspace_uid, 1000);
    for (const mount of ['/', '/usr', '/run/faas/data', '/run/faas/sys', '/dev/pts', '/sys/fs/cgroup']) assert.ok((report.mounts as string[]).includes(mount), `${mount} not mounted`);
    assert.deepEqual([...(report.controllers as string[])].sort(), ['cpu', 'memory', 'pids']);
    assert.equal((report.lo_flags as number) & 1, 1, 'lo is not up');
    assert.equal(report.tools, '');
    assert.equal(report.usr_writable, false);
    assert.equal(report.base_marker, false);
    // What the guest wrote landed in the overlay's upper dir on the data disk.
    const upper = execFileSync('debugfs', ['-R', 'ls -p /upper/workspace', data], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(upper, /from-guest/);
    process.stdout.write(`# boot to agent report: ${ms} ms\n`);
  });

  test('a data disk with base/ replaces the skeleton as the root', async () => {
    const base = join(work, 'base');
    execFileSync('cp', ['-a', image.skeleton, base]); // -a: a snapshot tree carries its owners
    writeFileSync(join(base, 'base-marker'), 'from the snapshot\n');
    const data = join(work, 'data-base.img');
    createDataDisk(data, 256 * 1024 * 1024, base);
    const { report, console: out } = await boot(image, data, 'withbase');
    assert.ok(report, `no FAAS-TEST line on the console:\n${out.slice(-3000)}`);
    assert.equal(report.base_marker, true);
    assert.equal(report.hostname, 'withbase');
    assert.equal(report.workspace_uid, 1000);
  });

  test('init powers off with a faas-init message when the kernel command line lacks faas.hostname', async () => {
    const data = join(work, 'data-nohost.img');
    createDataDisk(data, 128 * 1024 * 1024);
    const { report, console: out } = await boot(image, data, '');
    assert.equal(report, undefined);
    assert.match(out, /faas-init: no faas\.hostname= on the kernel command line/);
    assert.doesNotMatch(out, /Kernel panic/);
  });
});

describe('ensureGuestImage', { skip }, () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'faas-guest-cache-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('reuses a complete image, rebuilds when the agent changes, and survives concurrent callers', async () => {
    const cacheDir = join(work, 'cache');
    const agentPath = join(work, 'agent.py');
    writeFileSync(agentPath, 'print("v1")\n');
    const [first, concurrent] = await Promise.all([ensureGuestImage({ cacheDir, agentPath }), ensureGuestImage({ cacheDir, agentPath })]);
    assert.equal(concurrent.systemDisk, first.systemDisk);
    assert.ok(existsSync(first.systemDisk) && existsSync(first.initrd) && existsSync(first.kernel));
    const mtime = statSync(first.systemDisk).mtimeMs;
    const again = await ensureGuestImage({ cacheDir, agentPath });
    assert.deepEqual(again, first);
    assert.equal(statSync(again.systemDisk).mtimeMs, mtime, 'a complete image was rebuilt');

    writeFileSync(agentPath, 'print("v2")\n');
    const second = await ensureGuestImage({ cacheDir, agentPath });
    assert.notEqual(second.systemDisk, first.systemDisk);
    assert.notEqual(second.id, first.id);
    // Old keys stay (an instance may still use them); no temporary or lock file is left behind.
    assert.ok(existsSync(first.systemDisk));
    assert.deepEqual(readdirSync(cacheDir).filter((n) => n.startsWith('.') || n.endsWith('.lock')), []);
  });

  test('an image directory without its marker is rebuilt, not used', async () => {
    const cacheDir = join(work, 'cache2');
    const agentPath = join(work, 'agent2.py');
    writeFileSync(agentPath, 'print("x")\n');
    const image = await ensureGuestImage({ cacheDir, agentPath });
    const dir = join(image.systemDisk, '..');
    rmSync(join(dir, 'image.json'));
    writeFileSync(image.systemDisk, 'truncated');
    const rebuilt = await ensureGuestImage({ cacheDir, agentPath });
    assert.equal(rebuilt.id, image.id);
    const hash = createHash('sha256');
    for (const file of [rebuilt.kernel, rebuilt.initrd, rebuilt.systemDisk]) hash.update(readFileSync(file));
    assert.equal(hash.digest('hex'), image.id, 'the rebuilt artifacts do not match the image id');
  });
});

describe('data disk', { skip }, () => {
  test('createDataDisk is sparse and fast, and keeps owner and mode of the base tree', () => {
    const work = mkdtempSync(join(tmpdir(), 'faas-data-disk-'));
    try {
      const base = join(work, 'tree');
      mkdirSync(join(base, 'workspace'), { recursive: true });
      writeFileSync(join(base, 'workspace', 'f'), 'hello');
      execFileSync('chown', ['-R', '1000:1000', join(base, 'workspace')]);
      execFileSync('chmod', ['0640', join(base, 'workspace', 'f')]);
      const disk = join(work, 'data.img');
      const started = Date.now();
      createDataDisk(disk, 1024 ** 3, base);
      const ms = Date.now() - started;
      const allocated = Number(execFileSync('du', ['-k', disk], { encoding: 'utf8' }).split('\t')[0]);
      assert.equal(statSync(disk).size, 1024 ** 3);
      assert.ok(allocated < 4096, `data disk allocates ${allocated} KiB`);
      const listing = execFileSync('debugfs', ['-R', 'ls -p /base/workspace', disk], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.match(listing, /\/100640\/1000\/1000\/f\/5\//);
      assert.equal(existsSync(join(work, 'tree')), true, 'the base tree was consumed');
      assert.deepEqual(readdirSync(work).sort(), ['data.img', 'tree'], 'staging left behind');
      process.stdout.write(`# data disk (1 GiB, with base): ${ms} ms, ${allocated} KiB allocated\n`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('package set', { skip: process.platform !== 'linux' ? 'needs dpkg' : false }, () => {
  test('a root package missing on the host is named in a RUNTIME_ERROR', () => {
    assert.throws(
      () => resolvePackageClosure(readInstalledPackages(), ['bash', 'no-such-package-faas']),
      (err: unknown) => isFaasError(err) && err.code === 'RUNTIME_ERROR' && err.message.includes('no-such-package-faas'),
    );
  });

  test('the closure resolves alternatives to installed packages and includes python3-minimal', () => {
    const names = resolvePackageClosure(readInstalledPackages(), ['python3', 'bash']).map((p) => p.name);
    assert.ok(names.includes('python3-minimal'));
    assert.ok(names.includes('libc6'));
    assert.deepEqual(names, [...names].sort());
  });
});
