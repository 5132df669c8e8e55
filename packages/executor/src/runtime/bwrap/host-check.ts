import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { FaasError } from '@faas/protocol';

/** PATH for the host-side helper processes; the sandbox gets its own. */
export const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface HostPrograms {
  bwrap: string;
  nsenter: string;
  setpriv: string;
  sh: string;
  unshare: string;
}

/** Program → the Debian package that provides it, for a message a user can act on. */
const REQUIRED: Record<keyof HostPrograms, { names: string[]; pkg: string }> = {
  bwrap: { names: ['bwrap'], pkg: 'bubblewrap' },
  nsenter: { names: ['nsenter'], pkg: 'util-linux' },
  setpriv: { names: ['setpriv'], pkg: 'util-linux' },
  sh: { names: ['sh'], pkg: 'dash' },
  unshare: { names: ['unshare'], pkg: 'util-linux' },
};

function which(name: string): string | undefined {
  for (const dir of HOST_PATH.split(':')) {
    const path = `${dir}/${name}`;
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Finds the programs the runtime needs and checks the kernel allows unprivileged user
 * namespaces. Fails with one message naming every missing package.
 */
export function checkHostPrograms(): HostPrograms {
  const found: Partial<HostPrograms> = {};
  const missing = new Set<string>();
  for (const [key, req] of Object.entries(REQUIRED) as Array<[keyof HostPrograms, (typeof REQUIRED)[keyof HostPrograms]]>) {
    const path = req.names.map(which).find((p) => p !== undefined);
    if (path === undefined) missing.add(req.pkg);
    else found[key] = path;
  }
  if (!existsSync('/usr/bin/env')) missing.add('coreutils');
  // Instances run the host's sftp-server (from the /usr they share) for the SSH gateway's SFTP.
  if (!existsSync('/usr/lib/openssh/sftp-server')) missing.add('openssh-sftp-server');
  if (missing.size > 0) {
    const pkgs = [...missing].sort().join(' ');
    throw new FaasError('RUNTIME_ERROR', `missing system packages: ${pkgs} (install with: apt-get install -y ${pkgs}, or run scripts/ensure-system-packages.sh as root)`, { missing_packages: [...missing] });
  }
  const maxUserNs = readNumber('/proc/sys/user/max_user_namespaces');
  const unprivClone = readNumber('/proc/sys/kernel/unprivileged_userns_clone');
  if (maxUserNs === 0 || unprivClone === 0) {
    throw new FaasError('RUNTIME_ERROR', 'the kernel does not allow unprivileged user namespaces (set sysctl user.max_user_namespaces > 0 and kernel.unprivileged_userns_clone = 1)');
  }
  return found as HostPrograms;
}

function readNumber(path: string): number | undefined {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return undefined;
  }
}
