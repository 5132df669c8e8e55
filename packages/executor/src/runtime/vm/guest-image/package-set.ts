import { execFileSync } from 'node:child_process';
import { FaasError } from '@faas/protocol';

/**
 * The packages whose files make up the guest's /usr: what the agent needs (python3), what users
 * expect from a shell (coreutils, grep, sed, procps...) and sftp-server for the SSH gateway.
 * Their Depends/Pre-Depends closure is added; busybox is NOT here: it lives in the initramfs only.
 */
export const GUEST_ROOT_PACKAGES: readonly string[] = [
  'dash',
  'bash',
  'coreutils',
  'procps',
  'python3',
  'grep',
  'sed',
  'findutils',
  'gzip',
  'tar',
  'util-linux',
  'diffutils',
  'hostname',
  'libc-bin',
  'openssh-sftp-server',
  'ncurses-base',
];

export interface InstalledPackage {
  name: string;
  version: string;
  depends: string;
}

/** Every installed package of the host, by name, with the names it provides resolved to it. */
export interface InstalledPackages {
  byName: Map<string, InstalledPackage>;
  providers: Map<string, string[]>;
}

/** Runs a program and returns its stdout; a failure becomes a RUNTIME_ERROR naming the step. */
export function run(program: string, args: string[], step: string, env?: NodeJS.ProcessEnv): string {
  try {
    return execFileSync(program, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new FaasError('RUNTIME_ERROR', `guest image: ${step} failed (${program} ${args.slice(0, 4).join(' ')}...): ${stderr.trim() || (err as Error).message}`, { step }, { cause: err });
  }
}

/** Reads dpkg's database once: name, version, status, provides and (pre-)dependencies. */
export function readInstalledPackages(): InstalledPackages {
  const out = run('dpkg-query', ['-W', '-f=${Package}\t${Version}\t${db:Status-Status}\t${Provides}\t${Pre-Depends}, ${Depends}\n'], 'reading the dpkg database');
  const byName = new Map<string, InstalledPackage>();
  const providers = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const [name, version, status, provides, depends] = line.split('\t');
    if (name === undefined || version === undefined || depends === undefined || status !== 'installed') continue;
    // Multi-arch hosts list a package once per architecture; the first (native) one wins.
    if (byName.has(name)) continue;
    byName.set(name, { name, version, depends });
    for (const item of (provides ?? '').split(',')) {
      const provided = item.trim().split(/\s/)[0];
      if (provided) providers.set(provided, [...(providers.get(provided) ?? []), name]);
    }
  }
  return { byName, providers };
}

/**
 * The dependency closure of `roots` among installed packages. An alternative (`a | b`) resolves
 * to the first one installed (or provided by an installed package): that is the one that works
 * on the host, so it is the one the guest gets. Sorted, so the result does not depend on order.
 */
export function resolvePackageClosure(installed: InstalledPackages, roots: readonly string[]): InstalledPackage[] {
  const missing = roots.filter((r) => !installed.byName.has(r));
  if (missing.length > 0) {
    throw new FaasError('RUNTIME_ERROR', `guest image: missing host packages ${missing.join(' ')} (install with: apt-get install -y ${missing.join(' ')})`, { missing_packages: missing });
  }
  const seen = new Map<string, InstalledPackage>();
  const queue = [...roots];
  while (queue.length > 0) {
    const name = queue.pop() as string;
    if (seen.has(name)) continue;
    const pkg = installed.byName.get(name) as InstalledPackage;
    seen.set(name, pkg);
    for (const clause of pkg.depends.split(',')) {
      if (clause.trim() === '') continue;
      const alternatives = clause.split('|').map((a) => (a.trim().split(/[\s(]/)[0] ?? '').split(':')[0] ?? '');
      let chosen: string | undefined;
      for (const alt of alternatives) {
        if (installed.byName.has(alt)) chosen = alt;
        else chosen = installed.providers.get(alt)?.[0];
        if (chosen !== undefined) break;
      }
      // dpkg itself guarantees installed dependencies are satisfied; an unresolved clause means a
      // broken host database, which the image would inherit.
      if (chosen === undefined) throw new FaasError('RUNTIME_ERROR', `guest image: dependency "${clause.trim()}" of ${name} is not installed on the host`, { package: name });
      queue.push(chosen);
    }
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The files dpkg says each package owns, in one dpkg-query call. */
export function listPackageFiles(packages: readonly InstalledPackage[]): string[] {
  const out = run('dpkg-query', ['-L', ...packages.map((p) => p.name)], 'listing package files');
  return out.split('\n').filter((l) => l.startsWith('/'));
}

/** Installed version of one package, or undefined. */
export function installedVersion(installed: InstalledPackages, name: string): string | undefined {
  return installed.byName.get(name)?.version;
}
