import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FaasError } from '@faas/protocol';
import { unmount } from '../host-syscalls.ts';

const run = promisify(execFile);

/**
 * A read-only host view of a vm instance's root, as its processes see it without /usr: the data
 * disk's overlay upper over its `base` (a restored snapshot tree) or else the image's skeleton.
 *
 * Only valid while the guest's data filesystem is frozen (FIFREEZE has written everything and
 * marked the journal clean) and the machine is paused: the disk image is then a consistent ext4
 * that the host may mount read-only beside the guest, which writes nothing until the thaw.
 */
export class DiskView {
  private constructor(
    readonly root: string,
    private readonly diskMount: string,
  ) {}

  /** Mounts `disk` at `<dir>/disk` and the merged view at `<dir>/root`. */
  static async open(disk: string, dir: string, skeleton: string): Promise<DiskView> {
    const diskMount = join(dir, 'disk');
    const root = join(dir, 'root');
    mkdirSync(diskMount, { recursive: true, mode: 0o700 });
    mkdirSync(root, { recursive: true, mode: 0o755 });
    try {
      // noload: never replay the journal (there is nothing to replay after a freeze, and a
      // replay would write to the guest's disk).
      await run('mount', ['-o', 'loop,ro,noload', '-t', 'ext4', disk, diskMount]);
      const base = existsSync(join(diskMount, 'base')) ? join(diskMount, 'base') : skeleton;
      const lowers = [join(diskMount, 'upper'), base];
      for (const path of lowers) if (/[,:\\]/.test(path)) throw new Error(`overlay path contains a separator character: ${path}`);
      // Two lower layers and no upper: a read-only overlay that still honours the upper's
      // whiteouts and opaque dirs.
      await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowers.join(':')}`, root]);
    } catch (err) {
      unmount(root, true);
      unmount(diskMount, true);
      throw new FaasError('RUNTIME_ERROR', `cannot mount the instance's disk for reading: ${(err as Error).message}`, {}, { cause: err });
    }
    return new DiskView(root, diskMount);
  }

  /** Unmounts both; the loop device goes with the last user (mount set it to autoclear). */
  close(): void {
    unmount(this.root, true);
    unmount(this.diskMount, true);
  }
}
