import type { Command } from 'commander';
import { registerSshAudit } from './audit.ts';
import { registerSshConnect } from './connect.ts';
import { registerSshKeys } from './keys.ts';
import { registerSshRevoke } from './revoke.ts';
import { registerSshRotate } from './rotate.ts';

/**
 * `faas ssh <verb>`: one file per verb for key management (keys, rotate, revoke, audit).
 *
 * `faas ssh INSTANCE [-- cmd]` (get or rotate a key, run the system ssh) is this group's own
 * action: commander runs it when the first word is not one of the verbs. It belongs to the SSH
 * gateway part of issue 6 and is added where marked below. Instance ids never collide with a
 * verb: they start with `inst-` or are client-chosen ids, and a verb is not a valid one to pick.
 *
 * @returns the `ssh` command, so the connect action can be attached to it.
 */
export function registerSshCommands(program: Command): Command {
  const ssh = program.command('ssh').summary('SSH into instances and manage their SSH keys');
  registerSshKeys(ssh);
  registerSshRotate(ssh);
  registerSshRevoke(ssh);
  registerSshAudit(ssh);
  registerSshConnect(ssh);
  return ssh;
}
