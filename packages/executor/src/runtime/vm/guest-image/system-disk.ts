import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FaasError } from '@faas/protocol';
import { GUEST_AGENT_PATH } from './init-script.ts';
import { FIXED_MTIME } from './initramfs.ts';
import { run } from './package-set.ts';
import { buildSkeleton, normalizeTimes, walk } from './skeleton.ts';

/** Filesystem UUID and directory hash seed of the system disk: fixed, so two builds are identical. */
export const SYSTEM_DISK_UUID = '5f1a0c3e-7d2b-4e1a-9c6f-000000faa501';
export const SYSTEM_DISK_LABEL = 'faas-sys';

/** Documentation nobody reads inside an instance; dropping it keeps the disk about a third smaller. */
const EXCLUDED_PREFIXES = ['/usr/share/doc/', '/usr/share/man/', '/usr/share/info/', '/usr/share/locale/', '/usr/share/lintian/', '/usr/share/bug/', '/usr/share/doc-base/'];

/**
 * Copies the packages' files from the host into `staging/usr`. dpkg lists files by the path the
 * package shipped (`/bin/bash`), which on a merged-/usr host lives under /usr: each path is
 * mapped through the host's real parent directory, and only what lands in /usr is kept (files
 * under /etc are config; the skeleton provides the little the guest needs).
 *
 * Regular files keep the host's mtime: Python's .pyc files (compiled by Debian at install time
 * and not listed by dpkg, so added here) record their source's mtime, and Python would recompile,
 * into a read-only /usr, at every start if it changed. Those times come from the packages, so
 * they are the same at every build on a given host.
 *
 * Returns the set of absolute /usr paths staged.
 */
export function stageUsr(staging: string, packageFiles: readonly string[]): Set<string> {
  const wanted = new Set<string>();
  for (const listed of packageFiles) {
    let canonical: string;
    try {
      canonical = join(realpathSync(dirname(listed)), basename(listed));
    } catch {
      continue; // a path dpkg knows but the host no longer has (e.g. deleted docs)
    }
    if (!canonical.startsWith('/usr/') || EXCLUDED_PREFIXES.some((p) => canonical.startsWith(p))) continue;
    if (!existsSync(canonical) && !isSymlink(canonical)) continue;
    wanted.add(canonical);
    if (canonical.endsWith('.py')) {
      for (const pyc of compiledFor(canonical)) wanted.add(pyc);
    }
  }
  const staged = new Set<string>();
  const ensureDir = (abs: string) => {
    if (staged.has(abs) || abs === '/') return;
    ensureDir(dirname(abs));
    mkdirSync(join(staging, abs), { mode: 0o755 });
    chmodSync(join(staging, abs), lstatSync(abs).mode & 0o1777);
    staged.add(abs);
  };
  for (const abs of [...wanted].sort()) {
    const st = lstatSync(abs);
    if (st.isDirectory()) {
      ensureDir(abs);
      continue;
    }
    ensureDir(dirname(abs));
    const dest = join(staging, abs);
    if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(abs), dest);
    } else if (st.isFile()) {
      copyFileSync(abs, dest);
      // Owner becomes root (we run as root); setuid/setgid bits are dropped: the guest needs no
      // privilege raising, and a setgid binary whose group became root would be wrong anyway.
      chmodSync(dest, st.mode & 0o777);
      utimesSync(dest, st.mtime, st.mtime);
    } else {
      continue; // sockets, fifos, devices: never part of a package's /usr
    }
    staged.add(abs);
  }
  return staged;
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

const pycacheListings = new Map<string, string[]>();
/** The plain (non-optimized) .pyc files the host has for one .py file. */
function compiledFor(pyFile: string): string[] {
  const cacheDir = join(dirname(pyFile), '__pycache__');
  let names = pycacheListings.get(cacheDir);
  if (names === undefined) {
    try {
      names = readdirSync(cacheDir);
    } catch {
      names = [];
    }
    pycacheListings.set(cacheDir, names);
  }
  const stem = basename(pyFile, '.py');
  const prefix = `${stem}.cpython-`;
  return names.filter((n) => n.startsWith(prefix) && /^\d+\.pyc$/.test(n.slice(prefix.length))).map((n) => join(cacheDir, n));
}

/** Size of a tree in bytes as ext4 with 4 KiB blocks would roughly need it, and its entry count. */
function measureTree(root: string): { bytes: number; entries: number } {
  let bytes = 0;
  let entries = 0;
  walk(root, (path) => {
    const st = lstatSync(path);
    entries++;
    bytes += Math.max(4096, Math.ceil(st.size / 4096) * 4096);
  });
  return { bytes, entries };
}

/**
 * Makes the ext4 system disk from `staging` without mounting anything (mke2fs -d). Read-only
 * use means no journal. Reproducible: fixed UUID, hash seed and fake time; sorted input (mke2fs
 * reads directories in sorted order); and a debugfs pass that sets every inode's ctime and atime,
 * because mke2fs copies them from the staging files' stat and ctime cannot be set on the host.
 */
export function makeSystemDisk(staging: string, outFile: string): void {
  const { bytes, entries } = measureTree(staging);
  const sizeKiB = Math.ceil((bytes * 1.1 + 16 * 1024 * 1024) / 4096) * 4;
  const inodes = Math.ceil(entries * 1.1) + 1024;
  const env = { ...process.env, E2FSPROGS_FAKE_TIME: String(FIXED_MTIME), MKE2FS_CONFIG: '/dev/null' };
  run(
    'mke2fs',
    ['-q', '-F', '-t', 'ext4', '-b', '4096', '-I', '256', '-N', String(inodes), '-m', '0', '-L', SYSTEM_DISK_LABEL, '-U', SYSTEM_DISK_UUID, '-O', '^has_journal,^resize_inode',
      '-E', `hash_seed=${SYSTEM_DISK_UUID},root_owner=0:0,lazy_itable_init=0,nodiscard`, '-d', staging, outFile, `${sizeKiB}k`],
    'creating the system disk (mke2fs -d)',
    env,
  );
  const commands: string[] = [];
  walk(staging, (path) => {
    const rel = path.slice(staging.length) || '/';
    if (/["\n\\]/.test(rel)) throw new FaasError('RUNTIME_ERROR', `guest image: cannot normalize the times of ${JSON.stringify(rel)} (quote or newline in the name)`);
    commands.push(`sif "${rel}" ctime @${FIXED_MTIME}`, `sif "${rel}" atime @${FIXED_MTIME}`);
  });
  const cmdFile = `${outFile}.debugfs`;
  writeFileSync(cmdFile, `${commands.join('\n')}\n`);
  try {
    execFileSync('debugfs', ['-w', '-f', cmdFile, outFile], { stdio: ['ignore', 'ignore', 'pipe'], env, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    throw new FaasError('RUNTIME_ERROR', 'guest image: normalizing inode times with debugfs failed', {}, { cause: err });
  } finally {
    execFileSync('rm', ['-f', cmdFile]);
  }
}

/**
 * Stages and writes the system disk: /usr from the packages, the agent, /skel (a copy of the
 * skeleton, which is also built on the host at `skeletonDir` for the runtime to read).
 */
export function buildSystemDisk(options: { staging: string; skeletonDir: string; outFile: string; packageFiles: readonly string[]; agentPath: string }): void {
  mkdirSync(options.staging, { recursive: true, mode: 0o755 });
  const staged = stageUsr(options.staging, options.packageFiles);
  const agentDest = join(options.staging, GUEST_AGENT_PATH);
  mkdirSync(dirname(agentDest), { recursive: true, mode: 0o755 });
  copyFileSync(options.agentPath, agentDest);
  chmodSync(agentDest, 0o644);
  utimesSync(agentDest, FIXED_MTIME, FIXED_MTIME);
  staged.add(GUEST_AGENT_PATH);
  for (const required of ['/usr/bin/python3', '/usr/bin/sh', '/usr/bin/cat', '/usr/bin/ps', '/usr/bin/sleep', '/usr/bin/id', '/usr/bin/tty', '/usr/bin/stty', '/usr/bin/setsid', '/usr/bin/timeout', '/usr/bin/sync', '/usr/lib/openssh/sftp-server']) {
    if (!staged.has(required)) throw new FaasError('RUNTIME_ERROR', `guest image: ${required} is not provided by the guest package set (is its package installed on the host?)`, { path: required });
  }
  // A link to /etc/alternatives/x counts as present when the alternative's target is staged.
  buildSkeleton(options.skeletonDir, (abs) => staged.has(abs));
  run('cp', ['-a', options.skeletonDir, join(options.staging, 'skel')], 'copying the skeleton into the system disk');
  normalizeTimes(options.staging, true);
  makeSystemDisk(options.staging, options.outFile);
}
