import { posix } from 'node:path';
import { FaasError } from '@faas/protocol';
import { RootedFs, type RootedStat } from '../../runtime/rooted-fs.ts';
import { checkFileInside } from './file-probe-inside.ts';
import type { ProbeSpec } from './probe-config.ts';
import { timed, type Probe, type ProbeContext } from './probe.ts';

type FileSpec = Extract<ProbeSpec, { type: 'file' }>;

/** Symlinks followed before giving up (as the kernel's ELOOP limit, smaller). */
const MAX_LINK_HOPS = 8;

/**
 * Passes when the path exists inside the instance (with `non_empty`: a regular file of at least
 * one byte, or a directory with an entry). Looked up from the host through RootedFs, so every
 * step resolves inside the instance's root, symlinks included (followed as the sandbox would
 * see them, never into the host). What the runtime binds over the root (/usr, /proc, /dev) is
 * not the instance's own and is not seen. On a runtime whose files the host cannot read while
 * it runs (vm), the same check runs inside the instance instead (file-probe-inside.ts).
 */
export function fileProbe(spec: FileSpec, ctx: ProbeContext): Probe {
  return {
    type: 'file',
    timeoutMs: spec.timeoutMs,
    run: () =>
      timed('file', ctx.clock, async () => {
        const { instance } = ctx;
        let root: string;
        try {
          root = ctx.runtime.rootDir(instance.id);
        } catch (err) {
          // The host cannot read this instance's files while it runs (vm): look from inside.
          if (err instanceof FaasError && err.code === 'RUNTIME_UNSUPPORTED') return checkFileInside(spec, ctx);
          throw err;
        }
        const fs = RootedFs.open(root, { uid: instance.hostUid, gid: instance.hostUid });
        try {
          const found = resolve(fs, spec.path);
          if (found === undefined) return { ok: false, message: `${spec.shown} does not exist` };
          if (found === 'loop') return { ok: false, message: `${spec.shown}: too many levels of symbolic links` };
          const { stat, path } = found;
          if (!spec.nonEmpty) return { ok: true, message: `${spec.shown} exists (${stat.type})` };
          if (stat.type === 'file') {
            return stat.size > 0 ? { ok: true, message: `${spec.shown} exists, ${stat.size} bytes` } : { ok: false, message: `${spec.shown} exists but is empty` };
          }
          if (stat.type === 'dir') {
            const entries = fs.readdir(path).length;
            return entries > 0 ? { ok: true, message: `${spec.shown} is a directory with ${entries} entries` } : { ok: false, message: `${spec.shown} is an empty directory` };
          }
          return { ok: false, message: `${spec.shown} exists but is a ${stat.type}, neither a file nor a directory` };
        } finally {
          fs.close();
        }
      }),
  };
}

/** lstat, following symlinks of the final component within the root. */
function resolve(fs: RootedFs, start: string): { stat: RootedStat; path: string } | undefined | 'loop' {
  let path = start;
  for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
    const stat = fs.lstat(path);
    if (stat === null) return undefined;
    if (stat.type !== 'symlink') return { stat, path };
    const target = fs.readlink(path);
    // As RESOLVE_IN_ROOT does: absolute targets start at the root, '..' stops at it.
    const next = posix.normalize(posix.join('/', target.startsWith('/') ? '' : posix.dirname(path), target)).replace(/^\/+/, '').replace(/\/+$/, '');
    if (next === '' || next === '.') return { stat: { ...stat, type: 'dir' }, path: '' };
    path = next;
  }
  return 'loop';
}
