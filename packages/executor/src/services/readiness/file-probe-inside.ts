import { randomUUID } from 'node:crypto';
import { sandboxBaseEnv } from '../sandbox-env.ts';
import type { ProbeSpec } from './probe-config.ts';
import type { ProbeContext } from './probe.ts';

type FileSpec = Extract<ProbeSpec, { type: 'file' }>;

/**
 * What the path is, from inside the instance: one line, `missing`, `file <bytes>`,
 * `dir <entries>` or `other`. The instance's own kernel resolves it (symlinks included), as the
 * sandbox user, so nothing outside the instance is ever looked at.
 */
const SCRIPT = [
  'p=$1',
  'if [ ! -e "$p" ]; then echo missing',
  'elif [ -f "$p" ]; then echo "file $(wc -c < "$p")"',
  'elif [ -d "$p" ]; then echo "dir $(ls -A "$p" 2>/dev/null | wc -l)"',
  'else echo other; fi',
].join('\n');

/**
 * The file probe for a runtime whose instance files the host cannot read while it runs (vm):
 * the same answers as the host-side check, found by a small shell run inside the instance.
 */
export async function checkFileInside(spec: FileSpec, ctx: ProbeContext): Promise<{ ok: boolean; message: string }> {
  const out: Buffer[] = [];
  const proc = await ctx.runtime.exec(ctx.instance.id, {
    executionId: `probe-${randomUUID()}`,
    argv: ['/bin/sh', '-c', SCRIPT, 'faas-file-probe', `/${spec.path}`],
    env: sandboxBaseEnv(ctx.instance.id),
    envFromServerOnly: true,
    workingDir: '/',
    sink: { stdout: (c) => out.push(c), stderr: () => undefined, progress: () => undefined },
  });
  const timer = setTimeout(() => void proc.signal('SIGKILL'), spec.timeoutMs);
  const exit = await proc.wait().finally(() => clearTimeout(timer));
  const [kind, count] = Buffer.concat(out).toString('utf8').trim().split(' ');
  const n = Number(count);
  if (exit.exitCode !== 0 || kind === undefined) return { ok: false, message: `${spec.shown}: the check inside the instance did not finish (${exit.exitCode ?? exit.signal})` };
  if (kind === 'missing') return { ok: false, message: `${spec.shown} does not exist` };
  const type = kind === 'other' ? 'special file' : kind;
  if (!spec.nonEmpty) return { ok: true, message: `${spec.shown} exists (${type})` };
  if (kind === 'file') return n > 0 ? { ok: true, message: `${spec.shown} exists, ${n} bytes` } : { ok: false, message: `${spec.shown} exists but is empty` };
  if (kind === 'dir') return n > 0 ? { ok: true, message: `${spec.shown} is a directory with ${n} entries` } : { ok: false, message: `${spec.shown} is an empty directory` };
  return { ok: false, message: `${spec.shown} exists but is a special file, neither a file nor a directory` };
}
