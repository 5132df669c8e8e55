/**
 * Which entries of a tree a sync considers: gitignore rules as git applies them, then the
 * caller's exclude and include patterns.
 *
 * gitignore (when `useGitignore` is not false), as git's untracked-file walk does it:
 * - every `.gitignore` (a regular file; a symlinked one is not read, as git >= 2.32) applies
 *   to its own directory and everything below, its patterns relative to that directory;
 * - for a path, the `.gitignore` files are consulted from the deepest (the path's own
 *   directory) up to the root, then `.git/info/exclude` of the root; the first of these
 *   lists that has a matching pattern decides, and within a list the last matching pattern
 *   wins (so `!x` in a deeper file re-includes what a shallower one excluded);
 * - an excluded directory is not entered: nothing below it can be re-included, and the
 *   `.gitignore` files inside it are never read;
 * - matching is case-sensitive (core.ignorecase=false); core.excludesFile is not used.
 * Any entry named `.git` (directory or gitfile, at any level) is never synced, with or
 * without gitignore.
 *
 * `excludePatterns` (gitignore syntax, relative to the root) exclude on top: an entry is left
 * out when gitignore or they exclude it; a `!` in them only cancels their own earlier
 * patterns. `includePatterns` (gitignore syntax): when given, a file or symlink is kept only
 * if a pattern matches it or one of its parent directories; directories are walked
 * regardless, and a directory is listed when it matches or has listed content.
 *
 * The gitignore lists are tested one path at a time without the parent-directory shortcut of
 * `ignore().ignores()` (its per-list parent check would let a shallow `foo/` exclude
 * `x/foo/bar` although a deeper `!foo/` re-included `x/foo`); that uses the rule matcher
 * inside the `ignore` package (pinned to an exact version; checked when this module loads).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import ignore, { type Ignore } from 'ignore';
import type { SyncOptions } from './types.ts';

interface TestResult {
  ignored: boolean;
  unignored: boolean;
}

interface RuleTester {
  _rules: { test(path: string, checkUnignored: boolean, mode: string): TestResult };
}

/** `ignore`'s single-path test (no parent-directory check); `mode` 'regex' = the `ignores()` regexes. */
function testOne(ig: Ignore, path: string): TestResult {
  return (ig as unknown as RuleTester)._rules.test(path, true, 'regex');
}

function newIgnore(): Ignore {
  return ignore({ ignorecase: false });
}

// Fail loudly at load time if the `ignore` internals this relies on changed.
{
  const probe = newIgnore().add(['a/', '!b']);
  const r1 = testOne(probe, 'x/a/');
  const r2 = testOne(probe, 'b');
  if (!r1?.ignored || !r2?.unignored || testOne(probe, 'a').ignored) {
    throw new Error('sync/filters: the installed `ignore` package does not behave as the pinned 7.0.5 does');
  }
}

/** The patterns of one ignore file, relative to `base` ('' or 'dir/sub/'). */
export class RuleList {
  constructor(
    readonly base: string,
    private readonly ig: Ignore,
  ) {}

  static fromText(base: string, text: string): RuleList | undefined {
    const ig = newIgnore().add(text);
    return new RuleList(base, ig);
  }

  /** true: excluded; false: re-included by a negation; undefined: no pattern matches. */
  match(rel: string, isDir: boolean): boolean | undefined {
    const sub = (this.base === '' ? rel : rel.slice(this.base.length)) + (isDir ? '/' : '');
    const r = testOne(this.ig, sub);
    if (r.ignored) return true;
    if (r.unignored) return false;
    return undefined;
  }
}

/** The gitignore lists in force in one directory, deepest first. */
export type IgnoreStack = readonly RuleList[];

/** Reads a regular file without following a symlink; undefined when absent or not a regular file. */
function readRegularFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export class TreeFilter {
  readonly useGitignore: boolean;
  readonly #exclude: Ignore | undefined;
  readonly #include: Ignore | undefined;
  /** `.git/info/exclude` of the root: the lowest-precedence list. */
  readonly #infoExclude: RuleList | undefined;

  /** `root` is the absolute path of the tree (its `.git/info/exclude` is read). */
  constructor(root: string | undefined, options: SyncOptions) {
    this.useGitignore = options.useGitignore !== false;
    this.#exclude = options.excludePatterns && options.excludePatterns.length > 0 ? newIgnore().add(options.excludePatterns) : undefined;
    this.#include = options.includePatterns && options.includePatterns.length > 0 ? newIgnore().add(options.includePatterns) : undefined;
    const text = this.useGitignore && root !== undefined ? readRegularFile(`${root}/.git/info/exclude`) : undefined;
    this.#infoExclude = text === undefined ? undefined : RuleList.fromText('', text);
  }

  get hasIncludes(): boolean {
    return this.#include !== undefined;
  }

  /**
   * The stack for the directory `dirRel` ('' = root) given its parent's stack and the text of
   * its `.gitignore` (undefined when it has none).
   */
  enter(parent: IgnoreStack, dirRel: string, gitignoreText: string | undefined): IgnoreStack {
    if (!this.useGitignore || gitignoreText === undefined) return parent;
    const list = RuleList.fromText(dirRel === '' ? '' : `${dirRel}/`, gitignoreText);
    return list ? [list, ...parent] : parent;
  }

  /** Reads `<dirAbs>/.gitignore` when gitignore is in use (not following a symlink). */
  readGitignore(dirAbs: string): string | undefined {
    return this.useGitignore ? readRegularFile(`${dirAbs}/.gitignore`) : undefined;
  }

  /**
   * True when the entry `rel` (in a directory whose stack is `stack`) is left out by
   * gitignore, `.git` or the exclude patterns. An excluded directory must not be entered.
   */
  excluded(rel: string, name: string, isDir: boolean, stack: IgnoreStack): boolean {
    if (name === '.git') return true;
    if (this.useGitignore) {
      let verdict: boolean | undefined;
      for (const list of stack) {
        verdict = list.match(rel, isDir);
        if (verdict !== undefined) break;
      }
      if (verdict === undefined && this.#infoExclude) verdict = this.#infoExclude.match(rel, isDir);
      if (verdict === true) return true;
    }
    return this.#exclude !== undefined && this.#exclude.ignores(isDir ? `${rel}/` : rel);
  }

  /** With include patterns: true when they match the entry or one of its parent directories. */
  included(rel: string, isDir: boolean): boolean {
    return this.#include === undefined || this.#include.ignores(isDir ? `${rel}/` : rel);
  }
}
