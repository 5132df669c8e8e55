import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Key ids are the file names: checked so an id can never name a path elsewhere. */
const KEY_ID_PATTERN = /^key-[0-9a-z]{16}$/;
const TEMP_SUFFIX = '.tmp';

/**
 * Private keys at rest: one file per key, `<dir>/<key id>`, mode 0600 in a 0700 directory
 * (and its parent `ssh/`), root's alone. Not in SQLite: the database file is copied for backups
 * and inspection, a key file is not, and removing a file is a real erasure where a deleted row
 * lingers in the WAL and free pages.
 *
 * Writes are atomic (temp file, fsync, rename, fsync of the directory): a crash leaves the old
 * state or the new, never a truncated key. Contents never pass through a logger.
 */
export class PrivateKeyFiles {
  private constructor(readonly dir: string) {}

  /** Creates `dir` and its parent with mode 0700; chmod after mkdir, since an existing dir keeps whatever mode it had. */
  static async open(dir: string): Promise<PrivateKeyFiles> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dirname(dir), 0o700);
    await chmod(dir, 0o700);
    return new PrivateKeyFiles(dir);
  }

  async write(keyId: string, privateKey: string): Promise<void> {
    const path = this.#path(keyId);
    const temp = `${path}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
    // 'wx': never follow or reuse something already there; mode 0600 from the first byte.
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(privateKey, 'utf8');
      await handle.sync();
    } catch (err) {
      await handle.close();
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    await handle.close();
    await rename(temp, path);
    await this.#syncDir();
  }

  /** The key's contents, or undefined when no file exists (a BYO key, or one removed). */
  async read(keyId: string): Promise<string | undefined> {
    try {
      return await readFile(this.#path(keyId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Removes the key's file; true when there was one. */
  async remove(keyId: string): Promise<boolean> {
    try {
      await unlink(this.#path(keyId));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Ids of the keys that have a file; temp files a crash left behind are removed on the way. */
  async list(): Promise<string[]> {
    const ids: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(TEMP_SUFFIX)) await unlink(join(this.dir, name)).catch(() => undefined);
      else if (KEY_ID_PATTERN.test(name)) ids.push(name);
    }
    return ids.sort();
  }

  #path(keyId: string): string {
    if (!KEY_ID_PATTERN.test(keyId)) throw new RangeError(`not a key id: ${JSON.stringify(keyId)}`);
    return join(this.dir, keyId);
  }

  async #syncDir(): Promise<void> {
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
