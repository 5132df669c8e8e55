/** Helpers for the sync tests (not exported by the package). */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A fresh temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'faas-sync-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Writes a tree: a key ending in '/' is a directory, a value `{ link: target }` a symlink,
 * a string the content of a file.
 */
export function writeTree(root: string, tree: Record<string, string | { link: string }>): void {
  mkdirSync(root, { recursive: true });
  for (const [rel, value] of Object.entries(tree)) {
    const abs = join(root, rel);
    if (rel.endsWith('/')) {
      mkdirSync(abs, { recursive: true });
      continue;
    }
    mkdirSync(dirname(abs), { recursive: true });
    if (typeof value === 'string') writeFileSync(abs, value);
    else symlinkSync(value.link, abs);
  }
}

/** No system or user git config may change what git ignores. */
const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', HOME: '/nonexistent-faas-test', XDG_CONFIG_HOME: '/nonexistent-faas-test' };

/** True when a `git` binary is on PATH. */
export function hasGit(): boolean {
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The files and symlinks git does not ignore in the work tree `root` (untracked, nothing committed). */
export function gitUntracked(root: string): string[] {
  const out = execFileSync('git', ['-c', 'core.excludesFile=/dev/null', '-c', 'core.ignorecase=false', 'ls-files', '--others', '--exclude-standard', '-z'], {
    cwd: root,
    encoding: 'utf8',
    env: GIT_ENV,
  });
  return out
    .split('\0')
    .filter((p) => p !== '')
    .sort();
}

export function gitInit(root: string): void {
  execFileSync('git', ['init', '-q', root], { stdio: 'ignore', env: GIT_ENV });
}

export interface TreeState {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  /** mtime in microseconds (what a sync keeps). */
  mtimeUs: bigint;
  content?: string;
  target?: string;
}

/** Every entry below `root` (not following symlinks), with content, mode and µs mtime; `.git` skipped when `skipGit`. */
export function treeState(root: string, options: { skipGit?: boolean; mtimes?: boolean } = {}): Record<string, TreeState> {
  const out: Record<string, TreeState> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : join(root, rel)).sort()) {
      if (options.skipGit && name === '.git') continue;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, childRel);
      const st = lstatSync(abs, { bigint: true });
      const s: TreeState = { type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other', mode: Number(st.mode) & 0o7777, mtimeUs: options.mtimes === false ? 0n : st.mtimeNs / 1000n };
      if (s.type === 'file') s.content = createHash('sha256').update(readFileSync(abs)).digest('hex');
      if (s.type === 'symlink') {
        s.target = readlinkSync(abs);
        s.mode = 0;
      }
      out[childRel] = s;
      if (s.type === 'dir') walk(childRel);
    }
  };
  walk('');
  return out;
}
