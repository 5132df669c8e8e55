import { chmodSync, existsSync, lchownSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HostEnvironment, SANDBOX_HOME, SANDBOX_UID, WORKSPACE } from '../../bwrap/host-environment.ts';
import { FIXED_MTIME } from './initramfs.ts';

/**
 * Builds the guest's root skeleton (everything but /usr) in `dir`, owned as in the guest: root,
 * and uid/gid 1000 for the user's home and /workspace. It starts from the bwrap `host`
 * environment's base tree (same passwd, group, nsswitch, resolv.conf and copied /etc files, so
 * both runtimes give users the same /etc) and adds what a machine of its own needs.
 *
 * `inImage(path)` says whether an absolute /usr path exists in the image: /etc/alternatives
 * links are kept only when they lead there, so no link in the guest dangles into the host.
 */
export function buildSkeleton(dir: string, inImage: (absPath: string) => boolean): void {
  rmSync(dir, { recursive: true, force: true });
  new HostEnvironment(dir).build();
  // The bwrap runtime binds the host's /etc/ssl here; the guest has no certificates package.
  rmSync(join(dir, 'etc', 'ssl'), { recursive: true, force: true });
  mkdirSync(join(dir, 'sys'), { mode: 0o755 });
  for (const path of [SANDBOX_HOME, WORKSPACE]) mkdirSync(join(dir, path), { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, 'etc', 'hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  writeFileSync(join(dir, 'etc', 'shells'), '/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n/bin/dash\n/usr/bin/dash\n');
  copyAlternatives(join(dir, 'etc', 'alternatives'), inImage);

  // Ownership and times are part of the image; set them explicitly rather than inheriting them.
  walk(dir, (path, isDir) => {
    lchownSync(path, 0, 0);
    if (isDir) chmodSync(path, lstatSync(path).mode & 0o7777);
  });
  for (const path of [SANDBOX_HOME, WORKSPACE]) lchownSync(join(dir, path), SANDBOX_UID, SANDBOX_UID);
  normalizeTimes(dir);
}

/** Host /etc/alternatives links whose final target is a file in the image. */
function copyAlternatives(target: string, inImage: (absPath: string) => boolean): void {
  mkdirSync(target, { recursive: true, mode: 0o755 });
  if (!existsSync('/etc/alternatives')) return;
  for (const name of readdirSync('/etc/alternatives').sort()) {
    const link = join('/etc/alternatives', name);
    if (!lstatSync(link).isSymbolicLink()) continue;
    const dest = resolve('/etc/alternatives', readlinkSync(link));
    if (inImage(dest)) symlinkSync(readlinkSync(link), join(target, name));
  }
}

/** Calls `fn` for every entry below and including `root`, parents before children, sorted. */
export function walk(root: string, fn: (path: string, isDir: boolean) => void): void {
  const st = lstatSync(root);
  fn(root, st.isDirectory());
  if (!st.isDirectory()) return;
  for (const name of readdirSync(root).sort()) walk(join(root, name), fn);
}

/**
 * Sets every directory and symlink (and, unless `keepFileTimes`, every file) to FIXED_MTIME.
 * Children first: changing a child would not touch its parent's mtime, but creating one would.
 */
export function normalizeTimes(root: string, keepFileTimes = false): void {
  const entries: Array<{ path: string; isDir: boolean }> = [];
  walk(root, (path, isDir) => entries.push({ path, isDir }));
  for (const { path, isDir } of entries.reverse()) {
    if (keepFileTimes && !isDir && lstatSync(path).isFile()) continue;
    lutimesSync(path, FIXED_MTIME, FIXED_MTIME);
  }
}
