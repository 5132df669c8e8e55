import type { Command } from 'commander';
import { parseEnvVar, parsePositiveInteger, parsePositiveNumber } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';

interface CreateOptions {
  env?: string;
  envVar?: Record<string, string>;
  memory?: number;
  cpus?: number;
  pids?: number;
  json?: boolean;
}

/** `faas instances create`: prints the new instance's id (or the instance, with --json). */
export function registerInstancesCreate(instances: Command): void {
  instances
    .command('create')
    .summary('create a long-lived instance and print its id')
    .option('--env <name>', 'environment (base filesystem); the server default is "host"')
    .option('-e, --env-var <NAME=VALUE>', 'environment variable for every execution in it (repeatable)', parseEnvVar)
    .option('--memory <mb>', 'memory limit in MiB', parsePositiveInteger)
    .option('--cpus <n>', 'CPU quota in cores, e.g. 0.5', parsePositiveNumber)
    .option('--pids <n>', 'maximum number of processes and threads', parsePositiveInteger)
    .option('--json', 'print the instance as JSON instead of its id')
    .action(async (options: CreateOptions, cmd: Command) => {
      const instance = await createClient(cmd).instances.create({
        env: options.env,
        envVars: options.envVar,
        limits: { memoryMb: options.memory, cpuCores: options.cpus, pidsMax: options.pids },
      });
      process.stdout.write(options.json ? `${JSON.stringify(instance, null, 2)}\n` : `${instance.id}\n`);
    });
}
