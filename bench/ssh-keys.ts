/**
 * SSH key generation: `generateSshKey` in-process (node:crypto on the thread pool, converted to
 * OpenSSH formats by sshpk: what a rotate costs before the store) beside `ssh-keygen` spawned in
 * the same run, for Ed25519 and RSA-4096. The node:crypto generation alone is shown too, so the
 * cost of the OpenSSH conversion is visible.
 */
import { spawn } from 'node:child_process';
import { generateKeyPair } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSshKey, type SshKeyAlgorithm } from '../packages/executor/src/ssh/key-material.ts';
import { envInt, ms, printTable, ratio, section, timeSeries, verdict, type Summary } from './lib/stats.ts';

/** Target: an in-process Ed25519 key (with its OpenSSH encodings) in under 1 ms at p50. */
const TARGET_ED25519_MS = 1;

const timeAsync = (n: number, fn: (i: number) => Promise<unknown>): Promise<Summary> => timeSeries(n, fn);

/** `ssh-keygen -t TYPE -N '' -f FILE -q`, timed from spawn to close. */
function sshKeygen(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh-keygen', args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ssh-keygen ${args.join(' ')} exited ${code}`))));
  });
}

function rawEd25519(): Promise<void> {
  return new Promise((resolve, reject) => generateKeyPair('ed25519', {}, (err) => (err ? reject(err) : resolve())));
}

function rawRsa4096(): Promise<void> {
  return new Promise((resolve, reject) => generateKeyPair('rsa', { modulusLength: 4096 }, (err) => (err ? reject(err) : resolve())));
}

async function series(algorithm: SshKeyAlgorithm, n: number, keygenArgs: string[], raw: () => Promise<void>, dir: string): Promise<{ faas: Summary; raw: Summary; keygen: Summary }> {
  // Warm-up: first calls load OpenSSL's providers and JIT the conversion code.
  for (let i = 0; i < Math.min(3, n); i++) await generateSshKey(algorithm, 'warm-up');
  const faas = await timeAsync(n, () => generateSshKey(algorithm, 'bench'));
  const rawSummary = await timeAsync(n, raw);
  const keygen = await timeAsync(n, (i) => sshKeygen([...keygenArgs, '-N', '', '-q', '-C', 'bench', '-f', join(dir, `${algorithm}-${i}`)]));
  return { faas, raw: rawSummary, keygen };
}

export async function sshKeys(): Promise<void> {
  section('ssh-keys: key generation in-process (OpenSSH formats) vs ssh-keygen spawned, same run');
  const dir = mkdtempSync(join(tmpdir(), 'faas-bench-ssh-keys-'));
  try {
    const nEd = envInt('BENCH_N', 200);
    const nRsa = Math.max(3, Math.round(nEd / 20));
    const ed = await series('ed25519', nEd, ['-t', 'ed25519'], rawEd25519, dir);
    const rsa = await series('rsa', nRsa, ['-t', 'rsa', '-b', '4096'], rawRsa4096, dir);
    const row = (label: string, s: Summary) => [label, String(s.n), ms(s.p50), ms(s.p90), ms(s.min), ms(s.max)];
    printTable(['series', 'n', 'p50 ms', 'p90 ms', 'min ms', 'max ms'], [
      row('ed25519 generateSshKey (faas)', ed.faas),
      row('ed25519 node:crypto only', ed.raw),
      row('ed25519 ssh-keygen spawned', ed.keygen),
      row('rsa-4096 generateSshKey (faas)', rsa.faas),
      row('rsa-4096 node:crypto only', rsa.raw),
      row('rsa-4096 ssh-keygen spawned', rsa.keygen),
    ]);
    console.log(`  ed25519 faas/ssh-keygen p50: ${ratio(ed.faas.p50, ed.keygen.p50)}; OpenSSH conversion adds ${ms(ed.faas.p50 - ed.raw.p50)} ms at p50`);
    console.log(`  ed25519 in-process p50 ${ms(ed.faas.p50)} ms (target < ${TARGET_ED25519_MS} ms: ${verdict(ed.faas.p50 < TARGET_ED25519_MS)})`);
    console.log(`  rsa-4096 faas/ssh-keygen p50: ${ratio(rsa.faas.p50, rsa.keygen.p50)} (prime search: wide spread, n=${nRsa})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
