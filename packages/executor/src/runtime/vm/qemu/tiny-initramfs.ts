import { readFile, writeFile } from 'node:fs/promises';

/**
 * A minimal initramfs: busybox-static plus an `/init` shell script. Used by the accelerator
 * probe and the QEMU tests, which need a guest that boots in about two seconds and needs no
 * kernel modules (it talks over the serial console only).
 *
 * Written as an uncompressed cpio "newc" archive by hand (the format is 20 lines) so neither
 * cpio(1) nor gzip are needed, and the bytes depend only on the inputs.
 */

/** Debian's busybox-static. */
export const BUSYBOX_STATIC = '/bin/busybox';

interface Entry {
  name: string;
  mode: number;
  data?: Buffer;
  rdev?: [number, number];
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/**
 * Writes the archive to `path`. `init` is the body of /init, run by `/bin/busybox sh` as PID 1
 * with the console (ttyS0 when booted with console=ttyS0) as stdin/stdout; applets are called
 * as `busybox <applet>` or through the `/bin/sh` link (add `export PATH=/bin` and
 * `busybox --install -s /bin` to the script for the rest).
 */
export async function writeTinyInitramfs(path: string, init: string): Promise<void> {
  const entries: Entry[] = [
    { name: 'bin', mode: S_IFDIR | 0o755 },
    { name: 'dev', mode: S_IFDIR | 0o755 },
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] },
    { name: 'proc', mode: S_IFDIR | 0o755 },
    { name: 'sys', mode: S_IFDIR | 0o755 },
    { name: 'bin/busybox', mode: S_IFREG | 0o755, data: await readFile(BUSYBOX_STATIC) },
    { name: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('busybox') },
    { name: 'init', mode: S_IFREG | 0o755, data: Buffer.from(`#!/bin/busybox sh\n${init}\n`) },
  ];
  const parts = entries.flatMap((entry, i) => cpioEntry(entry, i + 1));
  parts.push(...cpioEntry({ name: 'TRAILER!!!', mode: 0 }, 0));
  await writeFile(path, Buffer.concat(parts));
}

function cpioEntry(entry: Entry, ino: number): Buffer[] {
  const data = entry.data ?? Buffer.alloc(0);
  const name = Buffer.from(`${entry.name}\0`);
  const [rdevMajor, rdevMinor] = entry.rdev ?? [0, 0];
  const fields = [ino, entry.mode, 0, 0, 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, name.length, 0];
  const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`);
  // Name and data are each padded so the next item starts on a 4-byte boundary.
  return [header, name, pad(header.length + name.length), data, pad(data.length)];
}

function pad(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}
