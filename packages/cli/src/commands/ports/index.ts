import type { Command } from 'commander';
import { registerPortExpose } from './expose.ts';
import { registerPortLs } from './ls.ts';
import { registerPortRm } from './rm.ts';

/** `faas port expose|ls|rm`: exposed ports of instances, one file per verb (docs/ports.md). */
export function registerPortCommands(program: Command): Command {
  const port = program.command('port').summary("expose instances' ports at public URLs, with optional access tokens");
  registerPortExpose(port);
  registerPortLs(port);
  registerPortRm(port);
  return port;
}
