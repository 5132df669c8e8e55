import type { Command } from 'commander';
import { parseNonNegativeInteger, parsePositiveInteger } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { SSH_AUDIT_TABLE_HEADERS, sshAuditRow } from '../../output/ssh-format.ts';
import { formatTable } from '../../output/table.ts';

/** `faas ssh audit INSTANCE`: keys issued, rotated, revoked, expired, and login attempts, oldest first. */
export function registerSshAudit(ssh: Command): void {
  ssh
    .command('audit')
    .summary("show an instance's SSH audit trail")
    .argument('<instance>', 'instance id')
    .option('--after <seq>', 'only entries after this sequence number', parseNonNegativeInteger)
    .option('--limit <n>', 'at most this many (default 100, at most 1000)', parsePositiveInteger)
    .option('--json', 'print the entries as JSON')
    .action(async (instance: string, options: { after?: number; limit?: number; json?: boolean }, cmd: Command) => {
      const events = await createClient(cmd).sshAudit(instance, { after: options.after, limit: options.limit });
      process.stdout.write(options.json ? `${JSON.stringify(events, null, 2)}\n` : formatTable(SSH_AUDIT_TABLE_HEADERS, events.map(sshAuditRow)));
    });
}
