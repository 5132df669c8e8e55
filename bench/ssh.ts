/**
 * SSH round trip: `ssh INSTANCE true` with the system OpenSSH client against the gateway
 * (TCP connect, key exchange, publickey auth, session, exec of `true` in the instance, exit
 * status, close), beside raw bwrap running /usr/bin/true in the same run. A second series
 * reuses one connection (OpenSSH ControlMaster): session + exec + exit only, so the share of
 * the handshake shows.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type RunningServer } from '../packages/executor/src/serve.ts';
import { RawBwrap } from './lib/baseline.ts';
import { removeServerTraces } from './lib/faas.ts';
import { Failures } from './lib/failures.ts';
import { envInt, now, printTable, ratio, section, summarize, SUMMARY_HEADERS, summaryCells } from './lib/stats.ts';

const WARMUP = 3;
const API_KEY = 'bench';

async function api(server: RunningServer, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Runs ssh to completion; its wall time from spawn to close. Fails unless it exits 0. */
function timedSsh(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn('/usr/bin/ssh', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => {
      const elapsed = now() - t0;
      if (code === 0) resolve(elapsed);
      else reject(new Error(`ssh exited ${code}: ${stderr.trim()}`));
    });
  });
}

export async function sshBench(): Promise<void> {
  const n = envInt('BENCH_SSH_N', 20);
  section(`ssh round trip: \`ssh INSTANCE true\` through the gateway (OpenSSH client, N=${n})`);
  const dataDir = mkdtempSync(join(tmpdir(), 'faas-bench-'));
  const clientDir = mkdtempSync(join(tmpdir(), 'faas-bench-ssh-'));
  const raw = RawBwrap.prepare();
  const server = await serve({ host: '127.0.0.1', port: 0, dataDir, apiKey: API_KEY, logLevel: process.env.FAAS_BENCH_LOG ?? 'silent', config: { sshPort: 0 } });
  try {
    if (server.ssh === null) throw new Error('the server runs no SSH gateway');
    const instance = await api(server, 'POST', '/api/v1/instances', {});
    const { key } = await api(server, 'POST', `/api/v1/instances/${instance.id}/ssh/rotate`, { algorithm: 'ed25519' });
    const keyFile = join(clientDir, 'id');
    writeFileSync(keyFile, key.private_key, { mode: 0o600 });
    const base = [
      '-F', '/dev/null', '-i', keyFile, '-p', String(server.ssh.port),
      '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'IdentityAgent=none',
      '-o', `UserKnownHostsFile=${join(clientDir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=accept-new',
    ];
    const target = `${instance.id}@127.0.0.1`;
    const fresh = () => timedSsh([...base, '-o', 'ControlMaster=no', '-o', 'ControlPath=none', target, 'true']);
    const controlPath = join(clientDir, 'mux');
    const muxed = () => timedSsh([...base, '-o', `ControlPath=${controlPath}`, target, 'true']);
    const rawTrue = async () => (await raw.run(['/usr/bin/true'])).ms;

    const failures = new Failures('ssh true', Math.max(3, Math.ceil(n / 10)));
    for (let i = 0; i < WARMUP; i++) {
      await rawTrue();
      await fresh();
    }
    // The master connection for the multiplexed series, kept open in the background.
    const master = spawn('/usr/bin/ssh', [...base, '-o', 'ControlMaster=yes', '-o', `ControlPath=${controlPath}`, '-N', target], { stdio: 'ignore' });
    const rawMs: number[] = [];
    const freshMs: number[] = [];
    const muxMs: number[] = [];
    try {
      await waitForMaster(() => timedSsh([...base, '-o', `ControlPath=${controlPath}`, '-O', 'check', target]));
      for (let i = 0; i < n; i++) {
        // Alternate the order so drift hits every series alike.
        const runs = i % 2 === 0 ? [rawTrue, fresh, muxed] : [muxed, fresh, rawTrue];
        for (const f of runs) {
          try {
            const t = await f();
            (f === rawTrue ? rawMs : f === fresh ? freshMs : muxMs).push(t);
          } catch (err) {
            failures.record(err);
          }
        }
      }
    } finally {
      master.kill('SIGTERM');
    }
    const r = summarize(rawMs);
    const f = summarize(freshMs);
    const m = summarize(muxMs);
    console.log('');
    printTable(['series', ...SUMMARY_HEADERS], [
      ['raw bwrap /usr/bin/true (baseline)', ...summaryCells(r)],
      ['ssh INSTANCE true (new connection)', ...summaryCells(f)],
      ['ssh INSTANCE true (multiplexed)', ...summaryCells(m)],
    ]);
    failures.print(3 * n + 2 * WARMUP);
    console.log('');
    printTable(['ratio to raw bwrap', 'p50', 'p99'], [
      ['ssh true, new connection', ratio(f.p50, r.p50), ratio(f.p99, r.p99)],
      ['ssh true, multiplexed', ratio(m.p50, r.p50), ratio(m.p99, r.p99)],
    ]);
    console.log('  new connection = TCP + key exchange + publickey auth (two key checks) + session + exec; multiplexed = session + exec only.');
  } finally {
    await server.close();
    raw.close();
    removeServerTraces(dataDir);
    rmSync(clientDir, { recursive: true, force: true });
  }
}

/** The master connection is up once `ssh -O check` finds it (a plain command would fall back to a new connection). */
async function waitForMaster(probe: () => Promise<number>): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await probe();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
