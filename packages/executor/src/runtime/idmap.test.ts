import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mountOverlay, SyscallError, unmount } from './host-syscalls.ts';
import { mountIdmapped, type IdMapping } from './idmap.ts';

const SANDBOX_ID = 1000;
const INSTANCE_ID = 1234567;
const MAP: IdMapping[] = [
  { from: 0, to: 0, count: 1 },
  { from: SANDBOX_ID, to: INSTANCE_ID, count: 1 },
];

/** Runs a shell snippet as the instance's uid/gid, the way a sandbox would. */
function runAsInstance(script: string): { status: number | null; stderr: string } {
  const r = spawnSync('setpriv', [`--reuid=${INSTANCE_ID}`, `--regid=${INSTANCE_ID}`, '--clear-groups', '--', 'sh', '-c', script], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

function ownedDir(path: string, id: number, mode = 0o755): string {
  mkdirSync(path, { recursive: true });
  chownSync(path, id, id);
  chmodSync(path, mode);
  return path;
}

describe('mountIdmapped', () => {
  const root = mkdtempSync(join(tmpdir(), 'faas-idmap-'));
  const src = join(root, 'src');
  const mounts: string[] = []; // unmounted in reverse order

  /** A fresh idmapped view of `src` plus an overlay on it with an upper owned by the instance. */
  function viewWithOverlay(name: string): { view: string; merged: string; upper: string } {
    const view = ownedDir(join(root, name, 'view'), 0);
    const merged = ownedDir(join(root, name, 'merged'), 0);
    const upper = ownedDir(join(root, name, 'upper'), INSTANCE_ID);
    const work = ownedDir(join(root, name, 'work'), INSTANCE_ID);
    mountIdmapped(src, view, MAP);
    mounts.push(view);
    mountOverlay(merged, [view], upper, work);
    mounts.push(merged);
    return { view, merged, upper };
  }

  before(() => {
    chmodSync(root, 0o755); // mkdtemp makes it 0700; the instance uid must traverse it
    ownedDir(src, 0);
    ownedDir(join(src, 'home'), SANDBOX_ID);
    ownedDir(join(src, 'etc'), 0);
    writeFileSync(join(src, 'home', 'file'), 'hello\n', { mode: 0o644 });
    chownSync(join(src, 'home', 'file'), SANDBOX_ID, SANDBOX_ID);
    writeFileSync(join(src, 'rootfile'), 'base\n', { mode: 0o644 });
  });

  after(() => {
    for (const m of mounts.reverse()) unmount(m, true);
    rmSync(root, { recursive: true, force: true });
  });

  test('shows the sandbox user as the instance uid/gid and root as root, read-only', () => {
    const view = ownedDir(join(root, 'plain'), 0);
    mountIdmapped(src, view, MAP);
    mounts.push(view);

    for (const p of ['home', 'home/file']) {
      const st = statSync(join(view, p));
      assert.equal(st.uid, INSTANCE_ID, p);
      assert.equal(st.gid, INSTANCE_ID, p);
    }
    const base = statSync(join(view, 'rootfile'));
    assert.equal(base.uid, 0);
    assert.equal(base.gid, 0);
    // The source itself is untouched.
    assert.equal(statSync(join(src, 'home', 'file')).uid, SANDBOX_ID);

    assert.throws(() => appendFileSync(join(view, 'home', 'file'), 'x'), { code: 'EROFS' });
    assert.throws(() => writeFileSync(join(view, 'new'), 'x'), { code: 'EROFS' });
  });

  test('an overlay on the view lets the instance uid write its files; copy-ups are its own', () => {
    const { merged, upper } = viewWithOverlay('ovl');

    const r = runAsInstance(`echo more >> ${merged}/home/file`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(merged, 'home', 'file'), 'utf8'), 'hello\nmore\n');
    for (const p of ['home', 'home/file']) {
      const st = statSync(join(upper, p));
      assert.equal(st.uid, INSTANCE_ID, p);
      assert.equal(st.gid, INSTANCE_ID, p);
    }
    // Root-owned base files stay root's: the instance cannot write them or root-owned dirs. (Not
    // the overlay's root dir: that one takes the upper dir's owner and mode.)
    assert.notEqual(runAsInstance(`echo x >> ${merged}/rootfile`).status, 0);
    assert.notEqual(runAsInstance(`touch ${merged}/etc/new`).status, 0);

    const orig = statSync(join(src, 'home', 'file'));
    assert.equal(readFileSync(join(src, 'home', 'file'), 'utf8'), 'hello\n');
    assert.equal(orig.uid, SANDBOX_ID);
    assert.equal(orig.gid, SANDBOX_ID);
  });

  test('the view can be detached right after mounting the overlay; the overlay keeps its idmap', () => {
    const { view, merged, upper } = viewWithOverlay('detached');
    assert.equal(unmount(view, true), true);
    assert.deepEqual(readdirSync(view), []); // the bare mount point again

    assert.equal(statSync(join(merged, 'home', 'file')).uid, INSTANCE_ID);
    assert.equal(statSync(join(merged, 'rootfile')).uid, 0);
    const r = runAsInstance(`echo more >> ${merged}/home/file && cat ${merged}/rootfile`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(join(upper, 'home', 'file')).uid, INSTANCE_ID);
    assert.equal(readFileSync(join(src, 'home', 'file'), 'utf8'), 'hello\n');
  });

  test('a bad source fails with a SyscallError naming it, leaking no fd', () => {
    const fdsBefore = readdirSync('/proc/self/fd').length;
    const view = ownedDir(join(root, 'bad'), 0);
    const missing = join(root, 'no-such-dir');
    assert.throws(() => mountIdmapped(missing, view, MAP), (e: unknown) => e instanceof SyscallError && e.syscall === 'open_tree' && e.message.includes(missing));
    // A bad target fails after the user namespace exists: its fd and the tree's must be closed.
    assert.throws(() => mountIdmapped(src, join(root, 'no-such-target'), MAP), (e: unknown) => e instanceof SyscallError && e.syscall === 'move_mount');
    assert.equal(readdirSync('/proc/self/fd').length, fdsBefore);
    assert.throws(() => mountIdmapped(src, view, []), /empty/);
  });

  test('is fast enough for the restore path', (t) => {
    const n = 20;
    const views = Array.from({ length: n }, (_, i) => ownedDir(join(root, 'bench', String(i)), 0));
    const start = performance.now();
    for (const view of views) {
      mountIdmapped(src, view, MAP);
      mounts.push(view);
    }
    const perCall = (performance.now() - start) / n;
    t.diagnostic(`mountIdmapped: ${perCall.toFixed(2)} ms per call`);
    assert.ok(perCall < 50, `${perCall} ms per call`);
  });
});
