import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Mutex } from '../../util/mutex.ts';

/** What a machine is: everything its saved memory depends on besides the guest's own state. */
export interface MachineShape {
  ramMb: number;
  vcpus: number;
  /** The guest image (kernel, initramfs, system disk) it booted from. */
  imageId: string;
  accel: 'kvm' | 'tcg';
}

/** A booted, paused machine saved to files: a new instance restores it instead of booting. */
export interface Template {
  shape: MachineShape;
  /** Device state (the migration stream with RAM left out). */
  state: string;
  /** Guest RAM as the machine left it (sparse). */
  ram: string;
  /** The data disk the guest had mounted (sparse). */
  disk: string;
}

/** Files a template build writes into the directory it is given. */
export type TemplateBuilder = (shape: MachineShape, dir: string) => Promise<void>;

const COMPLETE = 'complete.json';

/**
 * Templates on disk, one per machine shape, built on first use. A build writes into a scratch
 * dir renamed into place with its marker last, so a crash mid-build leaves no half template;
 * concurrent users of one shape wait for a single build.
 */
export class TemplateStore {
  private readonly locks = new Map<string, Mutex>();

  constructor(
    private readonly dir: string,
    private readonly build: TemplateBuilder,
  ) {}

  static keyOf(shape: MachineShape): string {
    const canonical = `${shape.imageId}|${shape.accel}|${shape.ramMb}|${shape.vcpus}`;
    return createHash('sha256').update(canonical).digest('hex').slice(0, 24);
  }

  async get(shape: MachineShape): Promise<Template> {
    const key = TemplateStore.keyOf(shape);
    let lock = this.locks.get(key);
    if (lock === undefined) this.locks.set(key, (lock = new Mutex()));
    return lock.run(async () => {
      const dir = join(this.dir, key);
      if (!existsSync(join(dir, COMPLETE))) {
        const scratch = `${dir}.building`;
        rmSync(scratch, { recursive: true, force: true });
        mkdirSync(scratch, { recursive: true, mode: 0o700 });
        try {
          await this.build(shape, scratch);
          writeFileSync(join(scratch, COMPLETE), JSON.stringify(shape));
          rmSync(dir, { recursive: true, force: true });
          renameSync(scratch, dir);
        } catch (err) {
          rmSync(scratch, { recursive: true, force: true });
          throw err;
        }
      }
      return { shape: JSON.parse(readFileSync(join(dir, COMPLETE), 'utf8')) as MachineShape, state: join(dir, 'state'), ram: join(dir, 'ram'), disk: join(dir, 'disk') };
    });
  }

  /** Removes every template (a new guest image makes them useless). */
  clear(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
