import type { Command } from 'commander';
import type { Environment } from '@faas/sdk';
import { parseNonNegativeInteger } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { formatTable } from '../../output/table.ts';

/** One `faas env ls` row: name, runtime, pool, tools. */
export function environmentRow(env: Environment): string[] {
  const tools = env.contains.map((tool) => (tool.version ? `${tool.name} ${tool.version}` : tool.name)).join(', ');
  return [env.name, env.runtime, `${env.pool.ready}/${env.pool.target}`, `${env.pool.hits}/${env.pool.misses}`, env.identity.slice(0, 12), tools || '-'];
}

/** `faas env ls|warm`: environments and their warm pools. */
export function registerEnvironmentCommands(program: Command): void {
  const env = program.command('env').alias('environments').summary('environments and their warm pools');
  env
    .command('ls')
    .alias('list')
    .summary('list environments: tools, identity, warm pool')
    .option('--json', 'print the environments as JSON')
    .action(async (options: { json?: boolean }, cmd: Command) => {
      const list = await createClient(cmd).listEnvironments();
      if (options.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      process.stdout.write(formatTable(['NAME', 'RUNTIME', 'READY/TARGET', 'HITS/MISSES', 'IDENTITY', 'CONTAINS'], list.map(environmentRow)));
    });
  env
    .command('warm')
    .summary('keep COUNT instances of an environment started ahead of demand (0 drains)')
    .description('Set how many instances of the environment are kept started ahead of demand; creates and ephemeral executions take one at once. 0 drains the pool. The pool fills in the background.')
    .argument('<name>', 'environment name, e.g. host')
    .argument('<count>', 'instances to keep ready (0-256)', parseNonNegativeInteger)
    .option('--json', 'print the pool state as JSON')
    .action(async (name: string, count: number, options: { json?: boolean }, cmd: Command) => {
      const result = await createClient(cmd).preWarmEnvironment(name, count);
      process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.env}: ${result.ready} of ${result.target} ready${result.ready < result.target ? ' (filling in the background)' : ''}\n`);
    });
}
