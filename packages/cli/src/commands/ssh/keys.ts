import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';
import { SSH_KEY_TABLE_HEADERS, sshKeyRow } from '../../output/ssh-format.ts';
import { formatTable } from '../../output/table.ts';

/** `faas ssh keys INSTANCE`: every key of the instance, newest first, with its state. */
export function registerSshKeys(ssh: Command): void {
  ssh
    .command('keys')
    .summary("list an instance's SSH keys (live, expired, revoked)")
    .argument('<instance>', 'instance id')
    .option('--json', 'print the keys as JSON')
    .action(async (instance: string, options: { json?: boolean }, cmd: Command) => {
      const keys = await createClient(cmd).listSSHKeys(instance);
      process.stdout.write(options.json ? `${JSON.stringify(keys, null, 2)}\n` : formatTable(SSH_KEY_TABLE_HEADERS, keys.map((k) => sshKeyRow(k))));
    });
}
