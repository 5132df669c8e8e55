import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';
import { formatTable } from '../../output/table.ts';

/** `faas port ls INSTANCE`: the instance's exposed ports, by port. */
export function registerPortLs(port: Command): void {
  port
    .command('ls')
    .summary("list an instance's exposed ports")
    .argument('<instance>', 'instance id')
    .option('--json', 'print the exposures as JSON')
    .action(async (instance: string, options: { json?: boolean }, cmd: Command) => {
      const ports = await createClient(cmd).listPorts(instance);
      process.stdout.write(
        options.json
          ? `${JSON.stringify(ports, null, 2)}\n`
          : formatTable(
              ['PORT', 'TOKEN', 'URL', 'CREATED'],
              ports.map((p) => [String(p.port), p.tokenRequired ? 'required' : 'none', p.url, p.createdAt.toISOString()]),
            ),
      );
    });
}
