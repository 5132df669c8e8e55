import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FaasError } from '@faas/protocol';
import { run } from './package-set.ts';

/** Volume label of every data disk (`/dev/vdb` in the guest). */
export const DATA_DISK_LABEL = 'faas-data';

/**
 * Creates an instance's data disk at `path`: a sparse raw file holding an empty ext4 (init makes
 * /upper and /work on first boot). With `baseTree`, the host directory is copied to `/base`
 * (owner, mode and times preserved), which init then uses instead of the skeleton as the
 * overlay's lower layer: this is how a snapshot's tree becomes a new instance's root.
 *
 * Cheap to create: the file starts as a hole and `assume_storage_prezeroed=1` tells mke2fs (and,
 * through the ITABLE_ZEROED group flags it sets, the guest kernel's lazy-init thread) that the
 * unwritten blocks read as zeros, so neither the inode tables nor the journal are written now or
 * later by the guest in the background. Only metadata that differs from zero takes space.
 * An existing file at `path` is replaced.
 */
export function createDataDisk(path: string, sizeBytes: number, baseTree?: string): void {
  if (!Number.isInteger(sizeBytes) || sizeBytes < 64 * 1024 * 1024) throw new FaasError('RUNTIME_ERROR', `data disk: size ${sizeBytes} is below the 64 MiB minimum`);
  if (baseTree !== undefined && !statSync(baseTree, { throwIfNoEntry: false })?.isDirectory()) throw new FaasError('RUNTIME_ERROR', `data disk: base tree ${baseTree} is not a directory`);
  rmSync(path, { force: true });
  // A fresh file: "prezeroed" is only true of a hole, never of a reused disk's old blocks.
  closeSync(openSync(path, 'w', 0o600));
  let staging: string | undefined;
  const args = ['-q', '-F', '-t', 'ext4', '-m', '0', '-L', DATA_DISK_LABEL, '-E', 'root_owner=0:0,assume_storage_prezeroed=1,nodiscard'];
  try {
    if (baseTree !== undefined) {
      staging = mkdtempSync(join(dirname(path), `.${basename(path)}-staging-`));
      copyTree(baseTree, join(staging, 'base'));
      args.push('-d', staging);
    }
    args.push(path, `${Math.floor(sizeBytes / 1024)}k`);
    run('mke2fs', args, 'creating the data disk (mke2fs)', { ...process.env, MKE2FS_CONFIG: '/etc/mke2fs.conf' });
  } catch (err) {
    rmSync(path, { force: true });
    throw err;
  } finally {
    if (staging !== undefined) rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * `cp -a`, but as hard links when on the same filesystem: instant for a large snapshot tree, and
 * mke2fs -d reads link and original alike (it maps host inodes to its own, so files that are
 * distinct in the tree stay distinct). Falls back to a real copy across filesystems.
 */
function copyTree(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  try {
    execFileSync('cp', ['-a', '-l', '--', from, to], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    rmSync(to, { recursive: true, force: true });
    run('cp', ['-a', '--', from, to], 'copying the base tree for the data disk');
  }
}
