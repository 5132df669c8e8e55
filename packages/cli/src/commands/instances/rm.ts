import type { Command } from 'commander';
import { createClient, EXIT_FAILURE, reportError } from '../../cli-context.ts';

/** `faas instances rm ID...`: deletes each; one failure does not stop the others. */
export function registerInstancesRm(instances: Command): void {
  instances
    .command('rm')
    .alias('delete')
    .summary('delete instances')
    .argument('<instance-id...>', 'the instances to delete')
    .action(async (ids: string[], _options: unknown, cmd: Command) => {
      const client = createClient(cmd);
      for (const id of ids) {
        try {
          await client.instances.delete(id);
          process.stdout.write(`${id}\n`);
        } catch (error) {
          reportError(error);
          process.exitCode = EXIT_FAILURE;
        }
      }
    });
}
