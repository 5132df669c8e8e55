import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { detectAccelerator } from './qemu/accelerator.ts';

/**
 * The accelerator probe boots a guest under KVM and waits up to 10 s for it (a /dev/kvm that
 * cannot run the kernel just hangs), so its answer is kept beside the images, keyed by what
 * decides it: the guest kernel, the host kernel and the QEMU binary.
 */
export async function rememberedAccelerator(dir: string, kernel: string): Promise<'kvm' | 'tcg'> {
  if (process.env.FAAS_VM_ACCEL) return detectAccelerator({ kernel });
  const fingerprint = (path: string) => {
    const st = statSync(path, { throwIfNoEntry: false });
    return st === undefined ? 'none' : `${st.size}:${st.mtimeMs}`;
  };
  const key = createHash('sha256').update([kernel, fingerprint(kernel), release(), fingerprint('/usr/bin/qemu-system-x86_64'), existsSync('/dev/kvm')].join('|')).digest('hex');
  const file = join(dir, 'accelerator.json');
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { key?: string; accel?: string };
    if (saved.key === key && (saved.accel === 'kvm' || saved.accel === 'tcg')) return saved.accel;
  } catch {
    // none yet, or unreadable: probe
  }
  const accel = await detectAccelerator({ kernel });
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify({ key, accel }));
  renameSync(`${file}.tmp`, file);
  return accel;
}
