import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaasError } from '@faas/protocol';
import { renderInitScript } from './init-script.ts';
import { run } from './package-set.ts';

/** Modules the guest needs (CONTRACT.md): virtio over PCI, its block and console drivers, overlay. */
export const GUEST_MODULES: readonly string[] = ['virtio', 'virtio_ring', 'virtio_pci', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_blk', 'virtio_console', 'overlay'];

/** mtime of every generated file (images and archives): a constant, so builds are byte-identical. */
export const FIXED_MTIME = 1_000_000_000;

/** One entry of the archive; paths are relative, without a leading slash. */
type CpioEntry =
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; data: Buffer }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; mode: number; major: number; minor: number };

/**
 * Writes a cpio "newc" archive ourselves instead of running cpio over a staging dir: we need a
 * /dev/console node (the kernel opens it for init's stdio before devtmpfs is mounted), which a
 * staging dir could only hold through mknod as root, and every header field is then under our
 * control (owner 0, fixed mtime, sequential inode numbers), so the archive is reproducible.
 */
function writeNewc(entries: readonly CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  let ino = 1;
  const push = (name: string, mode: number, data: Buffer, rdev: { major: number; minor: number } = { major: 0, minor: 0 }) => {
    const nameBuf = Buffer.from(`${name}\0`);
    const header = `070701${hex(ino++)}${hex(mode)}${hex(0)}${hex(0)}${hex(mode & 0o040000 ? 2 : 1)}${hex(FIXED_MTIME)}${hex(data.length)}${hex(0)}${hex(0)}${hex(rdev.major)}${hex(rdev.minor)}${hex(nameBuf.length)}${hex(0)}`;
    chunks.push(Buffer.from(header), nameBuf, pad4(110 + nameBuf.length), data, pad4(data.length));
  };
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const e of sorted) {
    if (e.kind === 'dir') push(e.path, 0o040000 | e.mode, Buffer.alloc(0));
    else if (e.kind === 'file') push(e.path, 0o100000 | e.mode, e.data);
    else if (e.kind === 'symlink') push(e.path, 0o120777, Buffer.from(e.target));
    else push(e.path, 0o020000 | e.mode, Buffer.alloc(0), e);
  }
  ino = 0;
  push('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(chunks);
}

/**
 * The module files to load, dependencies first, from the kernel's modules.dep. Names that are
 * built into this kernel (modules.builtin) or do not exist in this version are skipped (e.g.
 * virtio_pci_legacy_dev only became a separate module in 5.14).
 */
export function resolveModules(moduleDir: string, wanted: readonly string[]): string[] {
  const depFile = join(moduleDir, 'modules.dep');
  if (!existsSync(depFile)) throw new FaasError('RUNTIME_ERROR', `guest image: ${depFile} is missing (reinstall the kernel package linux-image-cloud-amd64)`);
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of readFileSync(depFile, 'utf8').split('\n')) {
    const [path, rest] = line.split(':');
    if (!path || rest === undefined) continue;
    deps.set(path, rest.trim() === '' ? [] : rest.trim().split(/\s+/));
    byName.set(moduleName(path), path);
  }
  const ordered: string[] = [];
  const visit = (path: string) => {
    if (ordered.includes(path)) return;
    // modules.dep lists all transitive deps; visiting each keeps the order right anyway.
    for (const dep of deps.get(path) ?? []) visit(dep);
    ordered.push(path);
  };
  for (const name of wanted) {
    const path = byName.get(name);
    if (path !== undefined) visit(path);
  }
  const essential = ['virtio_pci', 'virtio_blk', 'virtio_console', 'overlay'];
  const builtin = existsSync(join(moduleDir, 'modules.builtin')) ? readFileSync(join(moduleDir, 'modules.builtin'), 'utf8').split('\n').map(moduleName) : [];
  const absent = essential.filter((n) => !byName.has(n) && !builtin.includes(n));
  if (absent.length > 0) throw new FaasError('RUNTIME_ERROR', `guest image: kernel modules ${absent.join(', ')} are neither modules nor built into ${moduleDir}`);
  return ordered;
}

/** `kernel/drivers/virtio/virtio_pci.ko.xz` -> `virtio_pci` (module names use _ for -). */
function moduleName(path: string): string {
  const base = path.split('/').pop() ?? '';
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** A module file's bytes as busybox insmod needs them: plain ELF, decompressed when packed. */
function readModule(file: string): Buffer {
  if (file.endsWith('.ko')) return readFileSync(file);
  const tool = file.endsWith('.xz') ? ['xz', '-dc'] : file.endsWith('.zst') ? ['zstd', '-dc'] : ['gzip', '-dc'];
  try {
    return execFileSync(tool[0] as string, [tool[1] as string, file], { maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    throw new FaasError('RUNTIME_ERROR', `guest image: cannot decompress ${file} with ${tool[0]}`, {}, { cause: err });
  }
}

/**
 * The fastest decompressor the guest kernel and the host both support: the kernel inflates the
 * initramfs at every boot (slow under TCG), and lz4 decodes several times faster than gzip.
 * The kernel's lz4 loader wants the legacy frame format (`lz4 -l`).
 */
function pickCompressor(kernelConfig: string): { name: string; program: string; args: string[] } {
  const config = existsSync(kernelConfig) ? readFileSync(kernelConfig, 'utf8') : '';
  const hasTool = (t: string) => ['/usr/bin', '/bin'].some((d) => existsSync(join(d, t)));
  if (config.includes('CONFIG_RD_LZ4=y') && hasTool('lz4')) return { name: 'lz4', program: 'lz4', args: ['-l', '-9', '-c', '-'] };
  if (config.includes('CONFIG_RD_ZSTD=y') && hasTool('zstd')) return { name: 'zstd', program: 'zstd', args: ['-19', '-q', '-c', '-'] };
  return { name: 'gzip', program: 'gzip', args: ['-n', '-9', '-c'] };
}

/** True when a 64-bit ELF has a PT_INTERP program header, i.e. needs a dynamic loader. */
function hasElfInterpreter(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (elf.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

export interface InitramfsResult {
  compression: string;
  modules: string[];
}

/**
 * Builds the initramfs: busybox + applet links, /init, the guest modules with a modules.dep of
 * just them, and the device nodes init needs before devtmpfs is up.
 */
export function buildInitramfs(options: { outFile: string; kernelVersion: string; busybox?: string; moduleRoot?: string }): InitramfsResult {
  const busybox = options.busybox ?? '/bin/busybox';
  if (!existsSync(busybox)) throw new FaasError('RUNTIME_ERROR', 'guest image: /bin/busybox is missing (install with: apt-get install -y busybox-static)', { missing_packages: ['busybox-static'] });
  const busyboxData = readFileSync(busybox);
  // The initramfs runs no dynamic loader: a dynamically linked busybox (package busybox) would not start.
  if (hasElfInterpreter(busyboxData)) throw new FaasError('RUNTIME_ERROR', `guest image: ${busybox} is dynamically linked; install busybox-static`, { missing_packages: ['busybox-static'] });
  const moduleDir = join(options.moduleRoot ?? '/lib/modules', options.kernelVersion);
  const modules = resolveModules(moduleDir, GUEST_MODULES);
  const applets = run(busybox, ['--list'], 'listing busybox applets').split('\n').filter((a) => /^[\w.[\]-]+$/.test(a) && a !== 'busybox');

  const entries: CpioEntry[] = [];
  for (const dir of ['bin', 'dev', 'proc', 'sys', 'mnt', 'newroot', 'lib', 'lib/modules', `lib/modules/${options.kernelVersion}`]) entries.push({ kind: 'dir', path: dir, mode: 0o755 });
  entries.push({ kind: 'symlink', path: 'sbin', target: 'bin' });
  entries.push({ kind: 'chardev', path: 'dev/console', mode: 0o600, major: 5, minor: 1 });
  entries.push({ kind: 'chardev', path: 'dev/null', mode: 0o666, major: 1, minor: 3 });
  entries.push({ kind: 'file', path: 'bin/busybox', mode: 0o755, data: busyboxData });
  for (const applet of applets) entries.push({ kind: 'symlink', path: `bin/${applet}`, target: 'busybox' });

  const dirs = new Set<string>();
  const depLines: string[] = [];
  const loadOrder: string[] = [];
  for (const mod of modules) {
    const plain = mod.replace(/\.(xz|zst|gz)$/, '');
    const parts = plain.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    entries.push({ kind: 'file', path: `lib/modules/${options.kernelVersion}/${plain}`, mode: 0o644, data: readModule(join(moduleDir, mod)) });
    loadOrder.push(plain);
  }
  for (const dir of dirs) entries.push({ kind: 'dir', path: `lib/modules/${options.kernelVersion}/${dir}`, mode: 0o755 });
  const depSource = readFileSync(join(moduleDir, 'modules.dep'), 'utf8').split('\n');
  for (const line of depSource) {
    const [path, rest] = line.split(':');
    if (path && modules.includes(path)) depLines.push(`${path.replace(/\.(xz|zst|gz)$/, '')}:${(rest ?? '').replace(/\.(xz|zst|gz)\b/g, '')}`);
  }
  entries.push({ kind: 'file', path: `lib/modules/${options.kernelVersion}/modules.dep`, mode: 0o644, data: Buffer.from(`${depLines.sort().join('\n')}\n`) });
  entries.push({ kind: 'file', path: 'init', mode: 0o755, data: Buffer.from(renderInitScript({ kernelVersion: options.kernelVersion, modules: loadOrder })) });

  const compressor = pickCompressor(`/boot/config-${options.kernelVersion}`);
  let packed: Buffer;
  try {
    packed = execFileSync(compressor.program, compressor.args, { input: writeNewc(entries), maxBuffer: 256 * 1024 * 1024 });
  } catch (err) {
    throw new FaasError('RUNTIME_ERROR', `guest image: compressing the initramfs with ${compressor.name} failed`, {}, { cause: err });
  }
  writeFileSync(options.outFile, packed, { mode: 0o644 });
  return { compression: compressor.name, modules: loadOrder.map(moduleName) };
}
