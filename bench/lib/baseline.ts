/**
 * "Raw bwrap": what a user would do by hand to run one command in a sandbox with the same
 * isolation as a faas instance, and the baseline every faas figure is compared against.
 *
 * The bwrap flags are those of `BwrapRuntime.launch()` (same namespaces, same capability drop,
 * same read-only binds via `HostEnvironment.bindArgs()`, same in-sandbox uid, bwrap spawned as
 * an unprivileged host uid). What it leaves out is everything faas adds: no overlay (the root is
 * a plain temp dir with the same skeleton, bound read-write), no cgroup, no nsenter exec into a
 * long-lived init, no store, no log. The command runs as bwrap's own child; timed from spawn()
 * to the child's `close` (exit and its pipes drained).
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHostPrograms, HOST_PATH } from '../../packages/executor/src/runtime/bwrap/host-check.ts';
import { HostEnvironment, SANDBOX_UID } from '../../packages/executor/src/runtime/bwrap/host-environment.ts';
import { now } from './stats.ts';

/** Unprivileged host uid the raw runs use; outside faas's default range [200000, 265536). */
export const RAW_HOST_UID = 299_999;

export interface RawResult {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

export class RawBwrap {
  private constructor(
    readonly root: string,
    private readonly bwrap: string,
    private readonly binds: string[],
  ) {}

  /** Prepares the temp root: usr, proc, dev, tmp, workspace, etc mount points, and the merged-/usr links. */
  static prepare(): RawBwrap {
    const bwrap = checkHostPrograms().bwrap;
    const root = mkdtempSync(join(tmpdir(), 'faas-bench-raw-'));
    // bwrap runs as RAW_HOST_UID and opens the root by path.
    chmodSync(root, 0o755);
    for (const dir of ['usr', 'proc', 'dev', 'etc/alternatives', 'etc/ssl']) mkdirSync(join(root, dir), { recursive: true, mode: 0o755 });
    mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
    chmodSync(join(root, 'tmp'), 0o1777);
    mkdirSync(join(root, 'workspace'), { mode: 0o755 });
    chownSync(join(root, 'workspace'), RAW_HOST_UID, RAW_HOST_UID);
    for (const link of ['bin', 'lib', 'lib64', 'sbin']) {
      const host = `/${link}`;
      if (existsSync(host) && lstatSync(host).isSymbolicLink()) symlinkSync(readlinkSync(host), join(root, link));
    }
    // The faas base carries the host's linker cache too; without it ld.so probes default paths.
    if (existsSync('/etc/ld.so.cache')) copyFileSync('/etc/ld.so.cache', join(root, 'etc', 'ld.so.cache'));
    const binds = new HostEnvironment(join(root, 'unused')).bindArgs();
    return new RawBwrap(root, bwrap, binds);
  }

  /** The full bwrap argument list for `argv`. */
  args(argv: readonly string[]): string[] {
    return [
      '--bind', this.root, '/',
      ...this.binds,
      '--proc', '/proc',
      '--dev', '/dev',
      '--perms', '1777', '--tmpfs', '/dev/shm',
      '--unshare-user', '--uid', String(SANDBOX_UID), '--gid', String(SANDBOX_UID),
      '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
      '--hostname', 'raw-bench',
      '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
      '--chdir', '/workspace',
      '--', ...argv,
    ];
  }

  /** Runs `argv` in a fresh sandbox and waits for it to exit; throws on a non-zero exit. */
  run(argv: readonly string[]): Promise<RawResult> {
    const args = this.args(argv);
    return new Promise((resolve, reject) => {
      const started = now();
      const child = spawn(this.bwrap, args, {
        uid: RAW_HOST_UID,
        gid: RAW_HOST_UID,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: HOST_PATH },
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (c: Buffer) => out.push(c));
      child.stderr!.on('data', (c: Buffer) => err.push(c));
      child.once('error', reject);
      child.once('close', (code) => {
        const elapsed = now() - started;
        const result = { ms: elapsed, code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
        if (code !== 0) reject(new Error(`raw bwrap ${argv.join(' ')} exited ${code}: ${result.stderr.trim()}`));
        else resolve(result);
      });
    });
  }

  close(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
