import { closeSync, openSync, readlinkSync, writeFileSync } from 'node:fs';
import { MOUNT_ATTR_IDMAP, MOUNT_ATTR_RDONLY, moveMountTo, mountSetattr, openTreeClone } from './host-syscalls.ts';
import { killAndReap, spawnUntracked } from './process/posix-spawner.ts';

/**
 * Idmapped, read-only views of a directory tree, used as overlayfs lower dirs: the shared
 * snapshot tree stays owned by 1000 (the sandbox user) and 0 on disk, and each instance's view
 * shows 1000 as that instance's own host uid/gid, so it owns its files and copy-ups are its.
 *
 * Detaching the view under a live overlay: overlayfs takes a private clone of each layer's mount
 * (clone_private_mount() in ovl_get_layers) when it is mounted and works on that clone, which
 * keeps the idmap. So once `mount -t overlay` with lowerdir=<view> has returned, the view can be
 * lazily unmounted (umount2 MNT_DETACH) and the overlay keeps working, idmap included; the clone
 * goes when the overlay does. idmap.test.ts checks this.
 */

/** On-disk id `from` (and the `count - 1` after it) appears as host id `to` (and after). Applies to uids and gids alike. */
export interface IdMapping {
  from: number;
  to: number;
  count: number;
}

/** The helper needs only a moment to unshare; longer means it failed (e.g. user namespaces disabled). */
const HELPER_TIMEOUT_MS = 2000;
const POLL_INTERVAL_MS = 0.05;
/** Atomics.wait on it (never notified) is a synchronous sub-millisecond sleep. */
const pollSleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Mounts a read-only view of `source` at `target` in which ids are mapped by `map`; ids not
 * covered by it show as the overflow id (65534), and files they own cannot be copied up through
 * an overlay even by root (EACCES), so `map` must cover every owner in the tree. `source` must
 * be a directory on a filesystem that supports idmapped mounts (ext4, xfs, btrfs, tmpfs since
 * 6.3). Only the mount at `source`
 * is cloned, not mounts below it: snapshot trees are plain directories. Throws SyscallError
 * (naming the path) when a syscall fails; nothing (fd, process, mount) is left behind on error.
 */
/** `unshare` is util-linux's program (its path as the host check found it). */
export function mountIdmapped(source: string, target: string, map: readonly IdMapping[], unshare = '/usr/bin/unshare'): void {
  const mapText = formatIdMap(map);
  // Cloned first: a bad source fails before any process is started.
  const treeFd = openTreeClone(source);
  try {
    const usernsFd = createUserNamespace(mapText, unshare);
    try {
      mountSetattr(treeFd, { set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY, usernsFd });
    } finally {
      // The mount holds its own reference to the namespace's maps from here on.
      closeSync(usernsFd);
    }
    moveMountTo(treeFd, target);
  } finally {
    // Closing the fd of a detached tree that was never moved unmounts it; after move_mount it is a no-op.
    closeSync(treeFd);
  }
}

/** The `/proc/<pid>/{uid,gid}_map` text for `map`, validated (the kernel's own errors say only EINVAL). */
export function formatIdMap(map: readonly IdMapping[]): string {
  if (map.length === 0) throw new Error('id map is empty');
  const isId = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffff_fffe;
  for (const { from, to, count } of map) {
    if (!isId(from) || !isId(to) || !Number.isInteger(count) || count < 1 || !isId(from + count - 1) || !isId(to + count - 1)) {
      throw new Error(`invalid id mapping ${from} -> ${to} (count ${count})`);
    }
  }
  // One write(2) with every line: the maps can be written only once.
  return map.map(({ from, to, count }) => `${from} ${to} ${count}\n`).join('');
}

/**
 * A user namespace with `mapText` as both its uid and gid map, as an O_CLOEXEC fd. A namespace
 * needs a process to be created in and its maps are written through /proc/<pid>, so a helper
 * child unshares one and is killed as soon as the fd (which keeps the namespace alive) is open.
 * Writing gid_map needs no `setgroups deny` first: we have CAP_SETGID in the parent namespace.
 */
function createUserNamespace(mapText: string, unshare: string): number {
  const ownNs = readlinkSync('/proc/self/ns/user');
  // Not child_process.spawn: libuv forks the whole server, ~2 ms more.
  const pid = spawnUntracked([unshare, '--user', '--', '/usr/bin/sleep', 'infinity']);
  try {
    const nsPath = `/proc/${pid}/ns/user`;
    // spawnUntracked returns once unshare is exec'd; it calls unshare(CLONE_NEWUSER) right after, ~0.5 ms
    // later, so poll (readlink is a few µs) without giving up the thread to the event loop, but
    // sleep briefly between polls: on a busy host spinning takes the CPU the helper needs.
    const deadline = performance.now() + HELPER_TIMEOUT_MS;
    for (;;) {
      let ns: string | undefined;
      try {
        ns = readlinkSync(nsPath);
      } catch {
        // Exited (unshare failed; it says why on our stderr) and not yet reaped: its namespace links are gone.
      }
      if (ns !== undefined && ns !== ownNs) break;
      if (performance.now() > deadline) throw new Error(`user-namespace helper ${pid} did not enter a new user namespace`);
      Atomics.wait(pollSleeper, 0, 0, POLL_INTERVAL_MS);
    }
    // The helper is not reaped before killAndReap below, so the pid cannot have been reused.
    writeFileSync(`/proc/${pid}/uid_map`, mapText);
    writeFileSync(`/proc/${pid}/gid_map`, mapText);
    return openSync(nsPath, 'r');
  } finally {
    killAndReap(pid);
  }
}
