import { readFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { RotateSSHKeyOptions, SshKeyAlgorithm } from '@faas/sdk';
import { parseDuration } from '../../args/duration.ts';
import { createClient } from '../../cli-context.ts';
import { UsageError } from '../../usage-error.ts';

interface RotateOptions {
  algorithm?: SshKeyAlgorithm;
  expiresIn?: number;
  overlap?: number;
  publicKey?: string;
  out?: string;
  json?: boolean;
}

/**
 * `faas ssh rotate INSTANCE`: issues a new key (replacing the current one). The private key is
 * never printed unless asked (`--json`): `--out FILE` saves it with mode 0600, as ssh requires.
 */
export function registerSshRotate(ssh: Command): void {
  ssh
    .command('rotate')
    .summary('issue a new SSH key for an instance, replacing the current one')
    .argument('<instance>', 'instance id')
    .addOption(new Option('--algorithm <name>', 'key algorithm').choices(['ed25519', 'rsa', 'ecdsa']))
    .option('--expires-in <duration>', 'lifetime of the new key, e.g. 12h or 30d (default: the server\'s, 30d)', parseDuration)
    .option('--overlap <duration>', 'keep the replaced key valid this long, e.g. 10m (default 0: revoked at once)', parseDuration)
    .option('--public-key <file>', 'register your own public key (a .pub file) instead of having one generated')
    .option('--out <file>', 'save the private key to this file (mode 0600)')
    .option('--json', 'print the key as JSON (with its private key)')
    .action(async (instance: string, options: RotateOptions, cmd: Command) => {
      if (options.publicKey !== undefined && options.out !== undefined) throw new UsageError('--out saves a generated private key; with --public-key the private key is yours already');
      const request: RotateSSHKeyOptions = { algorithm: options.algorithm, expiresInMs: options.expiresIn, overlapMs: options.overlap };
      if (options.publicKey !== undefined) request.publicKey = readFileSync(resolve(options.publicKey), 'utf8');
      const key = await createClient(cmd).rotateSSHKey(instance, request);
      if (options.out !== undefined && key.privateKey !== undefined) await writePrivateKey(resolve(options.out), key.privateKey);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(key, null, 2)}\n`);
        return;
      }
      const lines = [`key:         ${key.id}`, `fingerprint: ${key.fingerprint}`, `algorithm:   ${key.algorithm}`, `expires:     ${key.expiresAt.toISOString()}`];
      if (key.rotatedFrom !== null) lines.push(`replaces:    ${key.rotatedFrom}${options.overlap ? ` (valid for ${options.overlap} ms more)` : ' (revoked)'}`);
      if (options.out !== undefined) lines.push(`private key: ${options.out}`);
      else if (key.privateKey !== undefined) lines.push('private key: not shown; pass --out FILE to save it (or --json)');
      if (key.connection !== null) lines.push(`connect:     ${key.connection.command.replace('<key file>', options.out ?? options.publicKey?.replace(/\.pub$/, '') ?? '<key file>')}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

/** Written whole or not at all, 0600 from creation (ssh refuses a key file others can read). */
async function writePrivateKey(path: string, privateKey: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(privateKey);
    await handle.chmod(0o600);
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  await rename(temp, path);
}
