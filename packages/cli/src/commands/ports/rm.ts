import type { Command } from 'commander';
import { createClient, EXIT_FAILURE, reportError } from '../../cli-context.ts';
import { parsePort } from '../../args/port.ts';

/** `faas port rm INSTANCE PORT...`: un-exposes each port; one failure does not stop the others. */
export function registerPortRm(port: Command): void {
  port
    .command('rm')
    .summary('un-expose ports: their public URLs answer 404 from now on')
    .argument('<instance>', 'instance id')
    .argument('<port...>', 'exposed ports', (value: string, previous: number[] | undefined) => [...(previous ?? []), parsePort(value)])
    .action(async (instance: string, ports: number[], _options: unknown, cmd: Command) => {
      const client = createClient(cmd);
      for (const p of ports) {
        try {
          await client.unexposePort(instance, p);
          process.stdout.write(`${p} un-exposed\n`);
        } catch (error) {
          reportError(error);
          process.exitCode = EXIT_FAILURE;
        }
      }
    });
}
