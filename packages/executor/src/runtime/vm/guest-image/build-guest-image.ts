import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaasError } from '@faas/protocol';
import { renderInitScript } from './init-script.ts';
import { buildInitramfs } from './initramfs.ts';
import { GUEST_ROOT_PACKAGES, type InstalledPackages, listPackageFiles, readInstalledPackages, resolvePackageClosure } from './package-set.ts';
import { buildSystemDisk } from './system-disk.ts';

/**
 * Bump when the builder's output changes for the same inputs (layout, flags, init logic not
 * captured by the init script text): cached images under an old version are then rebuilt.
 */
export const GUEST_IMAGE_BUILDER_VERSION = 1;

/** Host packages the builder itself uses (beyond the guest package set). */
export const GUEST_IMAGE_HOST_PACKAGES: readonly string[] = ['qemu-system-x86', 'linux-image-cloud-amd64', 'busybox-static', 'cpio', 'e2fsprogs'];

/** A built guest image: absolute paths of its artifacts, and identities. */
export interface GuestImage {
  /** The guest kernel (a copy of the host's /boot/vmlinuz-<ver>). */
  kernel: string;
  /** The initramfs (busybox, /init, modules), compressed. */
  initrd: string;
  /** The read-only ext4 system disk, attached as /dev/vda. */
  systemDisk: string;
  /** Host directory with the same tree as /skel on the system disk, owned as in the guest. */
  skeleton: string;
  /** `uname -r` of the guest kernel, e.g. `6.1.0-57-cloud-amd64`. */
  kernelVersion: string;
  /** sha256 hex over the contents of kernel, initrd and system disk, in that order. */
  id: string;
}

export interface BuildGuestImageOptions {
  /** Directory to write into (created; existing artifacts are overwritten). */
  outDir: string;
  /** Host path of the guest agent, installed as /usr/lib/faas/agent.py. */
  agentPath: string;
  /**
   * Root packages of the system disk (their dependency closure is added).
   * @default GUEST_ROOT_PACKAGES
   */
  packages?: readonly string[];
}

export interface EnsureGuestImageOptions {
  /** Directory holding one subdirectory per input key. Old keys are left in place. */
  cacheDir: string;
  agentPath: string;
  packages?: readonly string[];
  logger?: { info(o: object, msg?: string): void };
}

const ARTIFACTS = { kernel: 'vmlinuz', initrd: 'initrd.img', systemDisk: 'system.img', skeleton: 'skeleton' } as const;
/** Written last into a complete image directory; holds the image's id and kernel version. */
const MARKER = 'image.json';

/** Names of the Debian packages the builder needs that are not installed; empty when all are. */
export function checkGuestImageHost(): string[] {
  let installed: InstalledPackages;
  try {
    installed = readInstalledPackages();
  } catch {
    return [...GUEST_IMAGE_HOST_PACKAGES];
  }
  return GUEST_IMAGE_HOST_PACKAGES.filter((p) => !installed.byName.has(p));
}

/** The kernel that the linux-image-cloud-amd64 meta package currently points at (RUNTIME_ERROR naming the package when none). */
export function findGuestKernel(): { version: string; image: string; pkg: string } {
  return findKernel(readInstalledPackages());
}

function findKernel(installed: InstalledPackages): { version: string; image: string; pkg: string } {
  const meta = installed.byName.get('linux-image-cloud-amd64');
  const dep = meta?.depends.split(',').map((d) => d.trim().split(/[\s(]/)[0] ?? '').find((d) => d.startsWith('linux-image-'));
  if (meta === undefined || dep === undefined) throw new FaasError('RUNTIME_ERROR', 'guest image: no guest kernel (install with: apt-get install -y linux-image-cloud-amd64)', { missing_packages: ['linux-image-cloud-amd64'] });
  const version = dep.slice('linux-image-'.length);
  const image = `/boot/vmlinuz-${version}`;
  if (!existsSync(image)) throw new FaasError('RUNTIME_ERROR', `guest image: ${image} is missing (reinstall ${dep})`, { missing_packages: [dep] });
  return { version, image, pkg: dep };
}

function requireRoot(): void {
  // The skeleton and the disk carry uid 0 and 1000 owners, which only root can create.
  if (process.getuid?.() !== 0) throw new FaasError('RUNTIME_ERROR', 'guest image: building the guest image needs root (files owned by root and uid 1000)');
}

function requireHostPackages(): void {
  const missing = checkGuestImageHost();
  if (missing.length > 0) {
    throw new FaasError('RUNTIME_ERROR', `guest image: missing system packages: ${missing.join(' ')} (install with: apt-get install -y ${missing.join(' ')})`, { missing_packages: missing });
  }
}

function sha256File(path: string, hash = createHash('sha256')): ReturnType<typeof createHash> {
  return hash.update(readFileSync(path));
}

/** Builds a guest image into `outDir` from scratch. Needs root. */
export async function buildGuestImage(options: BuildGuestImageOptions): Promise<GuestImage> {
  requireRoot();
  requireHostPackages();
  if (!existsSync(options.agentPath)) throw new FaasError('RUNTIME_ERROR', `guest image: agent ${options.agentPath} does not exist`);
  const installed = readInstalledPackages();
  const kernel = findKernel(installed);
  const packages = resolvePackageClosure(installed, options.packages ?? GUEST_ROOT_PACKAGES);
  mkdirSync(options.outDir, { recursive: true, mode: 0o755 });
  const paths = artifactPaths(options.outDir);

  copyFileSync(kernel.image, paths.kernel);
  chmodSync(paths.kernel, 0o644);
  buildInitramfs({ outFile: paths.initrd, kernelVersion: kernel.version });
  const staging = join(options.outDir, '.staging');
  rmSync(staging, { recursive: true, force: true });
  try {
    buildSystemDisk({ staging, skeletonDir: paths.skeleton, outFile: paths.systemDisk, packageFiles: listPackageFiles(packages), agentPath: options.agentPath });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  const hash = createHash('sha256');
  for (const file of [paths.kernel, paths.initrd, paths.systemDisk]) sha256File(file, hash);
  return { ...paths, kernelVersion: kernel.version, id: hash.digest('hex') };
}

function artifactPaths(dir: string): Omit<GuestImage, 'id' | 'kernelVersion'> {
  return { kernel: join(dir, ARTIFACTS.kernel), initrd: join(dir, ARTIFACTS.initrd), systemDisk: join(dir, ARTIFACTS.systemDisk), skeleton: join(dir, ARTIFACTS.skeleton) };
}

/**
 * Everything the image is made from, hashed: builder version, kernel, the installed version of
 * every package that goes into the image or builds it, the agent's content and the init script.
 * A host upgrade or a new agent thus gives a new key (and a new directory).
 */
export function guestImageKey(agentPath: string, packages: readonly string[] = GUEST_ROOT_PACKAGES): string {
  const installed = readInstalledPackages();
  const kernel = findKernel(installed);
  const closure = resolvePackageClosure(installed, packages);
  const tools = [...GUEST_IMAGE_HOST_PACKAGES, kernel.pkg, 'lz4', 'zstd', 'gzip'].sort().map((n) => `${n}=${installed.byName.get(n)?.version ?? '-'}`);
  const input = {
    builder: GUEST_IMAGE_BUILDER_VERSION,
    kernel: kernel.version,
    packages: closure.map((p) => `${p.name}=${p.version}`),
    tools,
    agent: sha256File(agentPath).digest('hex'),
    init: createHash('sha256').update(renderInitScript({ kernelVersion: kernel.version, modules: [] })).digest('hex'),
  };
  return createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 32);
}

function readComplete(dir: string): GuestImage | undefined {
  try {
    const marker = JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as { id: string; kernelVersion: string };
    return { ...artifactPaths(dir), id: marker.id, kernelVersion: marker.kernelVersion };
  } catch {
    return undefined;
  }
}

/**
 * Returns the cached image for the current inputs, building it when absent. The image is built
 * in a temporary sibling directory and renamed into `<cacheDir>/<key>` with its marker already
 * written, so a directory under its key is always complete. A lock file (holding the builder's
 * pid) makes a concurrent caller wait instead of building twice; a lock whose pid is dead is
 * taken over. Should two builds still race, the loser discards its copy and uses the winner's.
 * Directories of older keys are never removed here (an instance may still run from them).
 */
export async function ensureGuestImage(options: EnsureGuestImageOptions): Promise<GuestImage> {
  requireRoot();
  requireHostPackages();
  if (!existsSync(options.agentPath)) throw new FaasError('RUNTIME_ERROR', `guest image: agent ${options.agentPath} does not exist`);
  mkdirSync(options.cacheDir, { recursive: true, mode: 0o755 });
  const key = guestImageKey(options.agentPath, options.packages);
  const finalDir = join(options.cacheDir, key);
  const lockPath = join(options.cacheDir, `${key}.lock`);
  for (;;) {
    const cached = readComplete(finalDir);
    if (cached !== undefined) {
      options.logger?.info({ dir: finalDir, id: cached.id }, 'guest image reused');
      return cached;
    }
    if (takeLock(lockPath)) break;
    await sleep(250);
  }
  try {
    const cached = readComplete(finalDir);
    if (cached !== undefined) return cached;
    const tmpDir = join(options.cacheDir, `.tmp-${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
    const started = Date.now();
    try {
      const built = await buildGuestImage({ outDir: tmpDir, agentPath: options.agentPath, packages: options.packages });
      writeFileSync(join(tmpDir, MARKER), `${JSON.stringify({ id: built.id, kernelVersion: built.kernelVersion, key }, null, 2)}\n`);
      // A leftover without a marker (a crash before this code existed, or manual meddling) is moved aside.
      if (existsSync(finalDir) && readComplete(finalDir) === undefined) renameSync(finalDir, `${tmpDir}.stale`);
      try {
        renameSync(tmpDir, finalDir);
      } catch (err) {
        const winner = readComplete(finalDir);
        if (winner === undefined) throw err;
      }
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
      rmSync(`${tmpDir}.stale`, { recursive: true, force: true });
    }
    const image = readComplete(finalDir);
    if (image === undefined) throw new FaasError('RUNTIME_ERROR', `guest image: ${finalDir} is incomplete after building`);
    options.logger?.info({ dir: finalDir, id: image.id, ms: Date.now() - started }, 'guest image built');
    return image;
  } finally {
    releaseLock(lockPath);
  }
}

function takeLock(lockPath: string): boolean {
  try {
    const fd = openSync(lockPath, 'wx', 0o644);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const holder = Number.parseInt(readFileSafe(lockPath), 10);
  if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) return false;
  // The holder died (or had not written its pid yet: then it retries after we remove it, and
  // the rename below still keeps the result consistent).
  try {
    unlinkSync(lockPath);
  } catch {
    // someone else removed it first
  }
  return false;
}

function releaseLock(lockPath: string): void {
  if (readFileSafe(lockPath) === String(process.pid)) rmSync(lockPath, { force: true });
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
