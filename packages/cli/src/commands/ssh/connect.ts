/**
 * `faas ssh INSTANCE [-- command...]`: an interactive shell (or one command) in an instance
 * through the system's OpenSSH client and the server's SSH gateway. The server hands out the
 * key; the host key is pinned to the fingerprint the API reports, so there is no
 * "authenticity of host can't be established" question, and no man in the middle either.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { isFaasError, type FaaSPlatformClient, type SshAccessKey, type SshConnection } from '@faas/sdk';
import { createClient } from '../../cli-context.ts';

interface ConnectOptions {
  tty?: boolean;
  identity?: string;
  forward?: string[];
}

/** The programs run; overridable so a test or an unusual system can point elsewhere. */
const SSH_BIN = process.env.FAAS_SSH_BIN ?? 'ssh';
const SSH_KEYSCAN_BIN = process.env.FAAS_SSH_KEYSCAN_BIN ?? 'ssh-keyscan';

export function registerSshConnect(ssh: Command): void {
  ssh
    .argument('<instance>', 'instance id (or a verb: keys, rotate, revoke, audit)')
    .argument('[command...]', 'command to run instead of a shell; put it after --')
    .option('-t, --tty', 'give the command a terminal (ssh -t), e.g. for top or vim')
    .option('-i, --identity <file>', 'use this private key instead of the server-held one (for keys you registered with rotate --public-key)')
    .option('-L, --forward <spec>', 'forward a local port into the instance, e.g. 9000:127.0.0.1:8000 (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .addHelpText('after', '\nExamples:\n  faas ssh inst-abc\n  faas ssh inst-abc -- ls -la /workspace\n  faas ssh inst-abc -L 9000:127.0.0.1:8000 -- sleep infinity')
    .action(async (instance: string, command: string[], options: ConnectOptions, cmd: Command) => {
      process.exitCode = await connect(createClient(cmd), instance, command, options);
    });
}

async function connect(client: FaaSPlatformClient, instance: string, command: string[], options: ConnectOptions): Promise<number> {
  const access = await accessFor(client, instance, options.identity !== undefined);
  const connection = access.connection;
  if (connection === null) throw new Error('the server runs no SSH gateway (it was started with --no-ssh)');
  // A private dir: the key must not be readable by anyone else, even for the moment ssh runs.
  const dir = await mkdtemp(join(tmpdir(), 'faas-ssh-'));
  try {
    let keyFile = options.identity === undefined ? undefined : resolve(options.identity);
    if (keyFile === undefined) {
      keyFile = join(dir, 'id');
      await writeFile(keyFile, access.privateKey!.endsWith('\n') ? access.privateKey! : `${access.privateKey!}\n`, { mode: 0o600 });
    }
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, await pinnedHostKey(connection), { mode: 0o600 });
    const args = [
      '-i', keyFile,
      '-p', String(connection.port),
      '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'LogLevel=ERROR',
      ...(options.tty ? ['-t'] : []),
      ...(options.forward ?? []).flatMap((spec) => ['-L', spec]),
      // Options end here: ssh reads options after the destination too, and a command may start with "-".
      '--',
      `${connection.user}@${connection.host}`,
      ...command,
    ];
    return await runSsh(args);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The current key with its private key; a new one when the instance has none, or when its
 * current key is the user's own (the server never had that private key). The user's key then
 * stays valid until it expires (the overlap covers its remaining life), so nothing that uses
 * it breaks.
 */
async function accessFor(client: FaaSPlatformClient, instance: string, ownKey: boolean): Promise<SshAccessKey> {
  let current: SshAccessKey | undefined;
  try {
    current = await client.getSSHKey(instance);
  } catch (error) {
    if (!(isFaasError(error) && error.code === 'SSH_KEY_NOT_FOUND')) throw error;
  }
  if (current !== undefined && (ownKey || current.privateKey !== undefined)) return current;
  if (ownKey) throw new Error(`${instance} has no live SSH key; register yours first: faas ssh rotate ${instance} --public-key FILE.pub`);
  if (current !== undefined) {
    process.stderr.write(`faas: the current key of ${instance} is your own (${current.fingerprint}); issuing a server key for this session. Use -i FILE to log in with yours.\n`);
    return client.rotateSSHKey(instance, { overlapMs: Math.max(0, current.expiresAt.getTime() - Date.now()) });
  }
  return client.rotateSSHKey(instance);
}

/**
 * A known_hosts line for the gateway whose key has the fingerprint the API gave. ssh cannot
 * pin a fingerprint directly, so the key is fetched with ssh-keyscan and kept only if it hashes
 * to that fingerprint: a different key (another server, an interceptor) is refused here.
 */
async function pinnedHostKey(connection: SshConnection): Promise<string> {
  const scan = await capture(SSH_KEYSCAN_BIN, ['-T', '10', '-p', String(connection.port), connection.host]);
  for (const line of scan.split('\n')) {
    const [hosts, type, blob] = line.trim().split(/\s+/);
    if (hosts === undefined || type === undefined || blob === undefined || hosts.startsWith('#')) continue;
    const fingerprint = `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
    if (fingerprint === connection.hostKeyFingerprint) return `${hosts} ${type} ${blob}\n`;
  }
  throw new Error(`the SSH gateway at ${connection.host}:${connection.port} did not present the host key ${connection.hostKeyFingerprint} the server reports; refusing to connect`);
}

function capture(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message} (install openssh-client)`)));
    child.once('close', () => resolveRun(out));
  });
}

/**
 * ssh with the terminal: its exit status is ours (a signal death is 128 + n, as in a shell).
 * Ctrl-C at the terminal reaches ssh (same process group), which passes it on; this process
 * only waits, so it must not die of it first and leave the key file behind.
 */
function runSsh(args: string[]): Promise<number> {
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  return new Promise<number>((resolveRun, reject) => {
    const child = spawn(SSH_BIN, args, { stdio: 'inherit' });
    const forwardTerm = () => child.kill('SIGTERM');
    process.on('SIGTERM', forwardTerm);
    child.once('error', (err) => reject(new Error(`cannot run ${SSH_BIN}: ${err.message} (install openssh-client)`)));
    child.once('close', (code, signal) => resolveRun(code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0))));
    child.once('close', () => process.off('SIGTERM', forwardTerm));
  }).finally(() => {
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
  });
}
