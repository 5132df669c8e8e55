/**
 * The filter against real git: for each tree, the files and symlinks the manifest lists must
 * be exactly those `git ls-files --others --exclude-standard` reports (with no global or
 * system config).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildManifest } from './manifest.ts';
import { gitInit, gitUntracked, hasGit, tempDir, writeTree } from './test-helpers.ts';
import type { SyncOptions } from './types.ts';

const git = hasGit();

async function synced(root: string, options: SyncOptions = {}): Promise<string[]> {
  const { entries } = await buildManifest(root, options);
  return entries
    .filter((e) => e.type !== 'dir')
    .map((e) => e.path)
    .sort();
}

async function allSynced(root: string, options: SyncOptions = {}): Promise<string[]> {
  return (await buildManifest(root, options)).entries.map((e) => e.path);
}

async function compareWithGit(tree: Record<string, string | { link: string }>, infoExclude?: string): Promise<string[]> {
  const { dir, cleanup } = tempDir();
  try {
    gitInit(dir);
    writeTree(dir, tree);
    if (infoExclude !== undefined) writeFileSync(join(dir, '.git/info/exclude'), infoExclude);
    const expected = gitUntracked(dir);
    assert.deepEqual(await synced(dir), expected);
    return expected;
  } finally {
    cleanup();
  }
}

test('gitignore: globs, dir-only and anchored patterns match as git does', { skip: !git && 'git missing' }, async () => {
  const got = await compareWithGit({
    '.gitignore': '*.log\nbuild/\n/anchored.txt\nfoo/\n',
    'a.log': '1',
    'src/b.log': '1',
    'build/x': '1',
    'src/build/y': '1',
    'anchored.txt': '1',
    'src/anchored.txt': '1',
    'keep.txt': '1',
    foo: 'a file named foo is not a directory',
    'bar/foo': { link: '../keep.txt' },
    'baz/foo/inner': '1',
  });
  assert.ok(got.includes('src/anchored.txt') && got.includes('foo') && got.includes('bar/foo') && !got.includes('baz/foo/inner'));
});

test('gitignore: deeper files override shallower ones, negation re-includes', { skip: !git && 'git missing' }, async () => {
  const got = await compareWithGit({
    '.gitignore': '*.tmp\nfoo/\n',
    'x.tmp': '1',
    'sub/.gitignore': '!keep.tmp\n',
    'sub/keep.tmp': '1',
    'sub/other.tmp': '1',
    'sub/deeper/keep.tmp': '1',
    // a shallow 'foo/' re-included by a deeper '!foo/': its content is synced
    'x/.gitignore': '!foo/\n',
    'x/foo/bar': '1',
    'y/foo/bar': '1',
  });
  assert.ok(got.includes('sub/keep.tmp') && got.includes('x/foo/bar') && !got.includes('y/foo/bar'));
});

test('gitignore: nothing below an excluded directory can be re-included', { skip: !git && 'git missing' }, async () => {
  const got = await compareWithGit({
    '.gitignore': 'logs/\n!logs/important.txt\ncache/*\n!cache/keep.txt\n',
    'logs/important.txt': '1',
    'logs/other.txt': '1',
    'logs/.gitignore': '!*\n',
    'cache/keep.txt': '1',
    'cache/drop.txt': '1',
  });
  assert.ok(!got.includes('logs/important.txt') && got.includes('cache/keep.txt'));
});

test('gitignore: ** patterns', { skip: !git && 'git missing' }, async () => {
  await compareWithGit({
    '.gitignore': 'a/**/z.txt\n**/gen\ndocs/**\n!docs/*.md\n**/deep/**/*.o\n',
    'a/z.txt': '1',
    'a/b/z.txt': '1',
    'a/b/c/z.txt': '1',
    'b/a/z.txt': '1',
    'gen/x': '1',
    'p/q/gen/x': '1',
    'p/gen': 'file named gen',
    'docs/readme.md': '1',
    'docs/x.txt': '1',
    'docs/sub/nested.md': '1',
    'src/deep/a/b/x.o': '1',
    'src/deep/x.o': '1',
    'src/deep/x.c': '1',
  });
});

test('gitignore: patterns with a slash are relative to their own .gitignore', { skip: !git && 'git missing' }, async () => {
  await compareWithGit({
    'sub/.gitignore': '/only-here\na/b.txt\n',
    'sub/only-here': '1',
    'sub/deep/only-here': '1',
    'sub/a/b.txt': '1',
    'sub/x/a/b.txt': '1',
    'only-here': '1',
    'a/b.txt': '1',
  });
});

test('gitignore: .git/info/exclude has the lowest precedence', { skip: !git && 'git missing' }, async () => {
  const got = await compareWithGit(
    {
      '.gitignore': '!secret-ok\n',
      'secret-1': '1',
      'secret-ok': '1',
      'dir/secret-2': '1',
      'plain': '1',
    },
    'secret*\n',
  );
  assert.ok(got.includes('secret-ok') && !got.includes('secret-1'));
});

test('gitignore: escapes, classes, trailing spaces, comments', { skip: !git && 'git missing' }, async () => {
  await compareWithGit({
    '.gitignore': '# a comment\n\\#hash\n\\!bang\n[ab].txt\n?.md\ntrail  \nspace\\ \n*.Case\n',
    '#hash': '1',
    '!bang': '1',
    'a.txt': '1',
    'c.txt': '1',
    'x.md': '1',
    'xy.md': '1',
    trail: '1',
    'space ': '1',
    'x.case': 'case-sensitive: not ignored',
    'x.Case': '1',
  });
});

test('gitignore: a symlinked .gitignore is not read; one inside an ignored dir neither', { skip: !git && 'git missing' }, async () => {
  await compareWithGit({
    'rules.txt': 'x\n',
    'a/.gitignore': { link: '../rules.txt' },
    'a/x': '1',
    '.gitignore': 'ign/\n.gitignore\n',
    'ign/.gitignore': '!*\n',
    'ign/f': '1',
    'b/.gitignore': '*\n!keep\n',
    'b/keep': '1',
    'b/drop': '1',
  });
});

test('gitignore: random trees and rules agree with git', { skip: !git && 'git missing' }, async () => {
  const names = ['a', 'b', 'c.log', 'd.txt'];
  const pool = ['*.log', '!*.log', 'a/', '/a', 'b', '!b', 'a/**', '**/b', 'a/b', '!a/', '*', '!*/', '!d.txt', 'b/*', '!b/d.txt', '/b/', '[ab]', '?', 'd.*', '**/a/d.txt', '!c.log', 'a/*/d.txt'];
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const { dir, cleanup } = tempDir();
  gitInit(dir);
  try {
    for (let round = 0; round < 80; round++) {
      for (const name of readdirSync(dir)) if (name !== '.git') rmSync(join(dir, name), { recursive: true });
      rmSync(join(dir, '.git/info/exclude'), { force: true });
      const build = (rel: string, depth: number): void => {
        const abs = rel === '' ? dir : join(dir, rel);
        mkdirSync(abs, { recursive: true });
        for (const n of names) {
          const childRel = rel === '' ? n : `${rel}/${n}`;
          const roll = rnd(10);
          if (roll < 4) writeFileSync(join(dir, childRel), 'x');
          else if (roll < 7 && depth < 3) build(childRel, depth + 1);
        }
        if (rnd(3) === 0) {
          const lines = Array.from({ length: 1 + rnd(4) }, () => pool[rnd(pool.length)]!);
          writeFileSync(join(abs, '.gitignore'), lines.join('\n') + '\n');
        }
      };
      build('', 0);
      if (rnd(2) === 0) writeFileSync(join(dir, '.git/info/exclude'), `${pool[rnd(pool.length)]}\n`);
      assert.deepEqual(await synced(dir), gitUntracked(dir), `round ${round}`);
    }
  } finally {
    cleanup();
  }
});

test('.git is never synced, with or without gitignore; useGitignore: false reads no .gitignore', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeTree(dir, { '.git/HEAD': 'ref', '.git/info/exclude': 'x\n', '.gitignore': '*.log\n', 'a.log': '1', x: '1', 'sub/.git': 'gitdir: elsewhere', 'sub/f': '1' });
    assert.deepEqual(await synced(dir), ['.gitignore', 'sub/f']);
    assert.deepEqual(await synced(dir, { useGitignore: false }), ['.gitignore', 'a.log', 'sub/f', 'x']);
  } finally {
    cleanup();
  }
});

test('excludePatterns apply on top of .gitignore, relative to the root', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeTree(dir, { '.gitignore': '*.log\n!keep.log\n', 'keep.log': '1', 'a.log': '1', 'tmp/x': '1', 'src/tmp/y': '1', 'src/z.ts': '1', 'top.ts': '1' });
    assert.deepEqual(await synced(dir, { excludePatterns: ['/tmp/', '*.ts', '!top.ts'] }), ['.gitignore', 'keep.log', 'src/tmp/y', 'top.ts']);
    // a negation in excludePatterns does not re-include what .gitignore excludes
    assert.deepEqual(await synced(dir, { excludePatterns: ['!a.log'] }), ['.gitignore', 'keep.log', 'src/tmp/y', 'src/z.ts', 'tmp/x', 'top.ts']);
    // without gitignore, only the excludes
    assert.deepEqual(await synced(dir, { useGitignore: false, excludePatterns: ['*.log', 'src/'] }), ['.gitignore', 'tmp/x', 'top.ts']);
  } finally {
    cleanup();
  }
});

test('includePatterns keep only matching files and the directories leading to them', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeTree(dir, {
      '.gitignore': 'ignored.ts\n',
      'src/a.ts': '1',
      'src/a.test.ts': '1',
      'src/ignored.ts': '1',
      'src/deep/b.ts': '1',
      'src/deep/c.js': '1',
      'docs/guide/x.md': '1',
      'empty/': '',
      'empty-matched/': '',
      'other/only.js': '1',
    });
    assert.deepEqual(await allSynced(dir, { includePatterns: ['*.ts', '!*.test.ts'] }), ['src', 'src/a.ts', 'src/deep', 'src/deep/b.ts']);
    // a matched directory brings its whole content; an empty dir only when matched
    assert.deepEqual(await allSynced(dir, { includePatterns: ['docs/', 'empty-matched/'] }), ['docs', 'docs/guide', 'docs/guide/x.md', 'empty-matched']);
    // combined with excludes (which win) and without gitignore
    assert.deepEqual(await allSynced(dir, { includePatterns: ['*.ts'], excludePatterns: ['deep/'], useGitignore: false }), ['src', 'src/a.test.ts', 'src/a.ts', 'src/ignored.ts']);
  } finally {
    cleanup();
  }
});
