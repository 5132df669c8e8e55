import type { Command } from 'commander';
import { createClient, EXIT_FAILURE, reportError } from '../../cli-context.ts';

/** `faas ssh revoke INSTANCE KEY_ID...`: prints each key revoked; one failure does not stop the others. */
export function registerSshRevoke(ssh: Command): void {
  ssh
    .command('revoke')
    .summary('revoke SSH keys of an instance now')
    .argument('<instance>', 'instance id')
    .argument('<key-id...>', 'key ids (key-...)')
    .action(async (instance: string, keyIds: string[], _options: unknown, cmd: Command) => {
      const client = createClient(cmd);
      for (const keyId of keyIds) {
        try {
          const key = await client.revokeSSHKey(instance, keyId);
          process.stdout.write(`${key.id} ${key.state}${key.revokeReason ? ` (${key.revokeReason})` : ''}\n`);
        } catch (error) {
          reportError(error);
          process.exitCode = EXIT_FAILURE;
        }
      }
    });
}
