import { closeSync, openSync, readFileSync, writeFileSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { FaasError } from '@faas/protocol';
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const flock = libc.func('int flock(int fd, int operation)');
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/**
 * One server per data dir: a second one would take the first one's instances for leftovers of
 * a crash and clean them up under its feet. An flock(2) on `<dataDir>/server.lock` is held for
 * the life of the process; the kernel drops it when the process ends, however it ends, so a
 * crash never leaves a stale lock behind.
 */
export class DataDirLock {
  private constructor(private fd: number | undefined) {}

  static acquire(dataDir: string): DataDirLock {
    const path = join(dataDir, 'server.lock');
    const fd = openSync(path, 'a+', 0o600);
    if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      const errno = koffi.errno();
      let holder = '';
      try {
        holder = readFileSync(path, 'utf8').trim();
      } catch {
        // unreadable: say less
      }
      closeSync(fd);
      if (errno === EWOULDBLOCK) {
        throw new FaasError('RUNTIME_ERROR', `the data dir ${dataDir} is in use by another faas server${holder ? ` (pid ${holder})` : ''}; give each server its own --data-dir`, { data_dir: dataDir });
      }
      throw new FaasError('RUNTIME_ERROR', `cannot lock ${path} (errno ${errno})`, { data_dir: dataDir });
    }
    ftruncateSync(fd, 0);
    writeFileSync(fd, `${process.pid}\n`);
    return new DataDirLock(fd);
  }

  release(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
