import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** uid/gid of the sandbox's user as seen inside; mapped onto the instance's own host uid. */
export const SANDBOX_UID = 1000;
export const SANDBOX_USER = 'user';
export const SANDBOX_HOME = '/home/user';
export const WORKSPACE = '/workspace';

/** Files the runtime writes into every instance's upper layer (relative to its root). */
export const IDENTITY_FILES: readonly string[] = ['etc/hostname', 'etc/hosts'];

/** Host directories every instance sees read-only. /usr carries the programs (merged-/usr layout). */
const READ_ONLY_BINDS = ['/usr', '/etc/alternatives', '/etc/ssl'];
/** Small host files copied into the base so programs find libraries, services and time zone. */
const COPIED_ETC_FILES = ['ld.so.cache', 'ld.so.conf', 'protocols', 'services', 'mime.types', 'localtime', 'os-release', 'inputrc', 'bash.bashrc', 'profile'];
const TOP_LEVEL_LINKS = ['bin', 'lib', 'lib32', 'lib64', 'libx32', 'sbin'];

/**
 * The `host` environment: a tiny base tree (the overlay's lower layer) holding mount points,
 * the merged-/usr symlinks and a minimal /etc; the host's /usr and a few /etc dirs are bound
 * read-only on top by bwrap. Rebuilt at every start so it follows the host's upgrades.
 */
export class HostEnvironment {
  readonly name = 'host';

  constructor(readonly root: string) {}

  build(): void {
    rmSync(this.root, { recursive: true, force: true });
    mkdirSync(this.root, { recursive: true, mode: 0o755 });
    for (const dir of ['usr', 'proc', 'dev', 'etc', 'etc/alternatives', 'etc/ssl', 'home', 'run', 'var', 'var/lib', 'var/cache', 'mnt', 'opt', 'srv']) {
      mkdirSync(join(this.root, dir), { recursive: true, mode: 0o755 });
    }
    for (const dir of ['tmp', 'var/tmp']) {
      mkdirSync(join(this.root, dir));
      // Not through mkdir's mode: the umask would strip the group/other write bits.
      chmodSync(join(this.root, dir), 0o1777);
    }
    mkdirSync(join(this.root, 'root'), { mode: 0o700 });
    for (const link of TOP_LEVEL_LINKS) {
      const hostPath = `/${link}`;
      if (!existsSync(hostPath)) continue;
      if (!lstatSync(hostPath).isSymbolicLink()) {
        throw new Error(`host /${link} is a directory, not a link into /usr; the host environment needs a merged-/usr system (Debian 12 and later)`);
      }
      symlinkSync(readlinkSync(hostPath), join(this.root, link));
    }
    for (const file of COPIED_ETC_FILES) {
      const hostPath = `/etc/${file}`;
      if (!existsSync(hostPath)) continue;
      cpSync(hostPath, join(this.root, 'etc', file), { dereference: lstatSync(hostPath).isSymbolicLink() && file !== 'localtime' && file !== 'os-release', verbatimSymlinks: true });
    }
    if (existsSync('/etc/ld.so.conf.d')) cpSync('/etc/ld.so.conf.d', join(this.root, 'etc', 'ld.so.conf.d'), { recursive: true, verbatimSymlinks: true });
    writeFileSync(
      join(this.root, 'etc', 'passwd'),
      `root:x:0:0:root:/root:/bin/sh\n${SANDBOX_USER}:x:${SANDBOX_UID}:${SANDBOX_UID}:${SANDBOX_USER}:${SANDBOX_HOME}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    );
    writeFileSync(join(this.root, 'etc', 'group'), `root:x:0:\n${SANDBOX_USER}:x:${SANDBOX_UID}:\nnogroup:x:65534:\n`);
    writeFileSync(join(this.root, 'etc', 'nsswitch.conf'), 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n');
    // No egress: an empty resolver config makes lookups fail at once instead of timing out.
    writeFileSync(join(this.root, 'etc', 'resolv.conf'), '# faas: this instance has no network egress\n');
  }

  /** Per-instance files in the instance's upper layer: its home, workspace and host name. */
  prepareUpper(upper: string, instanceId: string, hostUid: number): void {
    this.writeIdentity(upper, instanceId);
    for (const dir of [WORKSPACE, SANDBOX_HOME]) {
      const path = join(upper, dir);
      mkdirSync(path, { recursive: true, mode: 0o755 });
      chownSync(path, hostUid, hostUid);
    }
  }

  /** The host name files ({@link IDENTITY_FILES}), which name the instance. */
  writeIdentity(upper: string, instanceId: string): void {
    mkdirSync(join(upper, 'etc'), { recursive: true, mode: 0o755 });
    writeFileSync(join(upper, 'etc', 'hostname'), `${instanceId}\n`);
    writeFileSync(join(upper, 'etc', 'hosts'), `127.0.0.1\tlocalhost\n127.0.1.1\t${instanceId}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  }

  /** bwrap arguments that lay the host's read-only dirs over the instance root. */
  bindArgs(): string[] {
    const args: string[] = [];
    for (const dir of READ_ONLY_BINDS) if (existsSync(dir)) args.push('--ro-bind', dir, dir);
    return args;
  }
}
