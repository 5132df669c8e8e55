import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import type { Environment } from '@faas/protocol';
import type { Runtime } from '../runtime/types.ts';

/** Tools looked for, with the arguments that print their version. */
const TOOLS: ReadonlyArray<{ name: string; args: readonly string[] }> = [
  { name: 'sh', args: [] },
  { name: 'bash', args: ['--version'] },
  { name: 'python3', args: ['--version'] },
  { name: 'python', args: ['--version'] },
  { name: 'pip3', args: ['--version'] },
  { name: 'node', args: ['--version'] },
  { name: 'npm', args: ['--version'] },
  { name: 'perl', args: ['--version'] },
  { name: 'ruby', args: ['--version'] },
  { name: 'php', args: ['--version'] },
  { name: 'go', args: ['version'] },
  { name: 'rustc', args: ['--version'] },
  { name: 'java', args: ['-version'] },
  { name: 'git', args: ['--version'] },
  { name: 'gcc', args: ['--version'] },
  { name: 'g++', args: ['--version'] },
  { name: 'clang', args: ['--version'] },
  { name: 'make', args: ['--version'] },
  { name: 'cmake', args: ['--version'] },
  { name: 'curl', args: ['--version'] },
  { name: 'wget', args: ['--version'] },
  { name: 'tar', args: ['--version'] },
  { name: 'gzip', args: ['--version'] },
  { name: 'jq', args: ['--version'] },
  { name: 'sqlite3', args: ['--version'] },
];
/** Where instances look for programs, in PATH order (the sandbox's PATH). */
const BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin'];
const VERSION_TIMEOUT_MS = 3000;
const DESCRIPTIONS: Record<string, string> = {
  host: "The host's /usr (read-only) under a minimal /etc: the host's interpreters and tools, no network egress.",
};

export interface CatalogEntry {
  name: string;
  runtime: string;
  description: string;
  contains: Environment['contains'];
  identity: string;
}

/** Identities computed by the newest catalog of this process, by environment name. */
const identities = new Map<string, string>();

/**
 * The identity (SHA-256 hex) of an environment as the catalog computed it at start-up: it
 * changes when what the environment provides changes. For cache keys. Throws for an
 * environment no catalog has seen (before start-up, or an unknown name).
 */
export function environmentIdentity(env: string): string {
  const identity = identities.get(env);
  if (identity === undefined) throw new Error(`no identity for environment ${JSON.stringify(env)}: unknown, or the catalog is not initialized`);
  return identity;
}

/**
 * What each environment of the runtime provides: its tools with their versions and an identity
 * hash, detected once at start-up ({@link init}).
 *
 * Tools are found in the environment's program dirs and run on the host with their version
 * flag under a short timeout. For `host` those are the host's own /usr programs (what instances
 * see, read-only); for other environments they are looked up under the environment's root
 * and reported with a null version (they may not run outside it).
 *
 * Identity hashes: the environment's base tree (relative paths, types, modes, sizes, link
 * targets, file contents), and for `host` what the binds bring in: /etc/os-release, the dpkg
 * database (/var/lib/dpkg/status, content hash), the /etc/alternatives links, a listing
 * (name, size, mtime) of /usr/local/{bin,sbin} (programs installed outside the package manager).
 * Identities are file hashes only (a few ms, computed at start-up before any request); tool
 * versions are detected in the background and do not enter them.
 */
export class EnvironmentCatalog {
  private readonly identities = new Map<string, string>();
  private tools: Promise<Map<string, Environment['contains']>> | undefined;
  /** How long the identities took (synchronous, at start-up) and the tool detection (in the background). */
  readonly timings = { identityMs: 0, toolsMs: 0 };

  constructor(private readonly deps: { runtime: Pick<Runtime, 'name' | 'environments' | 'environmentRoot'>; logger: Logger }) {}

  /**
   * Computes every identity now (a few ms: file hashes, no process runs) and starts detecting
   * tools in the background (running ~20 programs takes a few hundred ms; {@link list} waits).
   */
  init(): void {
    const { runtime, logger } = this.deps;
    const started = performance.now();
    for (const env of runtime.environments) {
      const identity = computeIdentity(runtime.name, env, runtime.environmentRoot(env));
      this.identities.set(env, identity);
      identities.set(env, identity);
    }
    this.timings.identityMs = performance.now() - started;
    this.tools = (async () => {
      const result = new Map<string, Environment['contains']>();
      for (const env of runtime.environments) {
        try {
          // The host environment's programs are the host's /usr, bound over the (empty) base /usr.
          result.set(env, await detectTools(env === 'host' ? '/' : runtime.environmentRoot(env), env === 'host'));
        } catch (err) {
          logger.warn({ err, env }, 'detecting the tools of an environment failed');
          result.set(env, []);
        }
      }
      this.timings.toolsMs = performance.now() - started;
      logger.info({ identity_ms: Math.round(this.timings.identityMs), tools_ms: Math.round(this.timings.toolsMs), tools: Object.fromEntries([...result].map(([e, t]) => [e, t.length])) }, 'environment catalog ready');
      return result;
    })();
  }

  /** Every environment with its tools (waits for their detection at most once, after start-up). */
  async list(): Promise<CatalogEntry[]> {
    const tools = await this.detected();
    return [...this.identities].map(([name, identity]) => ({
      name,
      runtime: this.deps.runtime.name,
      description: DESCRIPTIONS[name] ?? `The ${name} environment.`,
      contains: tools.get(name) ?? [],
      identity,
    }));
  }

  has(env: string): boolean {
    return this.identities.has(env);
  }

  /** The identity of `env` (see {@link environmentIdentity}). */
  identity(env: string): string {
    const identity = this.identities.get(env);
    if (identity === undefined) throw new Error(`no environment ${JSON.stringify(env)} in the catalog`);
    return identity;
  }

  /** Waits for the background detection (shutdown: no version probe outlives the server). */
  async close(): Promise<void> {
    await this.tools?.catch(() => undefined);
  }

  private detected(): Promise<Map<string, Environment['contains']>> {
    if (this.tools === undefined) throw new Error('the environment catalog is not initialized');
    return this.tools;
  }
}

/**
 * SHA-256 hex of what an environment provides: its base tree, and for `host` what the binds
 * bring in (os-release, the dpkg database, /etc/alternatives, /usr/local programs).
 */
export function computeIdentity(runtimeName: string, env: string, baseDir: string): string {
  const hash = createHash('sha256');
  hash.update(`faas-environment-identity v1\0${runtimeName}\0${env}\0`);
  hashTree(hash, baseDir);
  if (env === 'host') hashHostExtras(hash);
  return hash.digest('hex');
}

/** Tools present under `root` (program dirs in PATH order), with versions when `runnable`. */
export async function detectTools(root: string, runnable: boolean): Promise<Environment['contains']> {
  const found = TOOLS.flatMap((tool) => {
    for (const dir of BIN_DIRS) {
      const hostPath = join(root, dir, tool.name);
      try {
        const st = statSync(hostPath);
        if (st.isFile() && (st.mode & 0o111) !== 0) return [{ tool, path: join(dir, tool.name), hostPath }];
      } catch {
        // not there
      }
    }
    return [];
  });
  let packages: Map<string, string> | undefined;
  return Promise.all(
    found.map(async ({ tool, path, hostPath }) => {
      let version = runnable && tool.args.length > 0 ? await runVersion(hostPath, tool.args) : null;
      if (version === null && runnable) {
        // No version flag (sh is dash): the version of the package named after the program it resolves to.
        packages ??= dpkgVersions();
        try {
          version = packages.get(basename(realpathSync(hostPath))) ?? null;
        } catch {
          version = null;
        }
      }
      return { name: tool.name, version, path };
    }),
  );
}

/** Installed package → version, from the dpkg database (empty without one). */
function dpkgVersions(): Map<string, string> {
  const versions = new Map<string, string>();
  let text = '';
  try {
    text = readFileSync('/var/lib/dpkg/status', 'utf8');
  } catch {
    return versions;
  }
  for (const para of text.split('\n\n')) {
    const name = /^Package: (.+)$/m.exec(para)?.[1];
    const version = /^Version: (.+)$/m.exec(para)?.[1];
    if (name && version && /^Status: .* installed$/m.test(para)) versions.set(name.trim(), version.trim());
  }
  return versions;
}

/** The first version-looking token of what `program args` prints, or null (timeout, failure, none). */
function runVersion(program: string, args: readonly string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(
      program,
      [...args],
      { timeout: VERSION_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 256 * 1024, env: { PATH: BIN_DIRS.join(':'), LANG: 'C', LC_ALL: 'C', HOME: '/nonexistent' }, cwd: '/' },
      (err, stdout, stderr) => {
        if (err && (err.killed || (stdout === '' && stderr === ''))) return resolve(null);
        resolve(parseVersion(`${stdout}\n${stderr}`));
      },
    ).stdin?.end();
  });
}

/** The first dotted version number in the first lines of `text` (e.g. "Python 3.11.2" → "3.11.2", "v20.1.0" → "20.1.0"). */
export function parseVersion(text: string): string | null {
  const head = text.split('\n').slice(0, 4).join('\n');
  const m = /(?<![\w.])v?(\d+\.\d+(?:\.\d+)*(?:[-+~][0-9A-Za-z.+~-]+)?)/.exec(head);
  return m ? m[1]! : null;
}

/** Every entry under `dir`, sorted: relative path, type, mode, size, link target, content hash. */
function hashTree(hash: ReturnType<typeof createHash>, dir: string): void {
  if (!existsSync(dir)) return;
  const walk = (rel: string) => {
    const names = readdirSync(join(dir, rel)).sort();
    for (const name of names) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const full = join(dir, relPath);
      const st = lstatSync(full);
      if (st.isSymbolicLink()) hash.update(`l\0${relPath}\0${readlinkSync(full)}\0`);
      else if (st.isDirectory()) {
        hash.update(`d\0${relPath}\0${(st.mode & 0o7777).toString(8)}\0`);
        walk(relPath);
      } else if (st.isFile()) {
        hash.update(`f\0${relPath}\0${(st.mode & 0o7777).toString(8)}\0${st.size}\0`);
        hash.update(createHash('sha256').update(readFileSync(full)).digest('hex'));
      } else hash.update(`o\0${relPath}\0`);
    }
  };
  walk('');
}

function hashHostExtras(hash: ReturnType<typeof createHash>): void {
  for (const file of ['/etc/os-release', '/usr/lib/os-release', '/var/lib/dpkg/status']) {
    try {
      hash.update(`file\0${file}\0`);
      hash.update(createHash('sha256').update(readFileSync(file)).digest('hex'));
    } catch {
      hash.update('absent\0');
    }
  }
  for (const dir of ['/etc/alternatives', '/usr/local/bin', '/usr/local/sbin']) {
    let names: string[] = [];
    try {
      names = readdirSync(dir).sort();
    } catch {
      // absent
    }
    hash.update(`dir\0${dir}\0`);
    for (const name of names) {
      try {
        const st = lstatSync(join(dir, name));
        hash.update(st.isSymbolicLink() ? `${name}\0->${readlinkSync(join(dir, name))}\0` : `${name}\0${st.size}\0${st.mtimeMs}\0`);
      } catch {
        // vanished
      }
    }
  }
}
