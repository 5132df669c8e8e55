import type { Command } from 'commander';
import { registerInstancesCreate } from './create.ts';
import { registerInstancesExec } from './exec.ts';
import { registerInstancesLs } from './ls.ts';
import { registerInstancesRm } from './rm.ts';

/** `faas instances <verb>`: one file per verb. */
export function registerInstancesCommands(program: Command): void {
  const instances = program.command('instances').summary('manage long-lived instances');
  registerInstancesLs(instances);
  registerInstancesCreate(instances);
  registerInstancesRm(instances);
  registerInstancesExec(instances);
}
