import type { Command } from 'commander';
import { parsePositiveInteger, parsePositiveNumber } from '../../args/run-args.ts';
import { addRunOptions, toExecRequest, type RunOptions } from '../../args/run-options.ts';
import { createClient } from '../../cli-context.ts';
import { exitWithResult, forwardInterrupts, liveOutputCallbacks } from '../../output/live-output.ts';

interface ExecOptions extends RunOptions {
  memory?: number;
  cpus?: number;
  pids?: number;
  env?: string;
}

/** `faas exec [options] -- cmd args...`: a one-shot execution in a fresh instance. */
export function registerExecCommand(program: Command): void {
  const command = program
    .command('exec')
    .summary('run a command once in a fresh instance')
    .description(
      'Run a command once in a fresh instance that is deleted afterwards. Output is written live; ' +
        'faas exits with the command\'s exit code (124 on timeout, 137 when out of memory, 128+N when ' +
        'ended by signal N).',
    );
  addRunOptions(command)
    .option('--memory <mb>', 'memory limit in MiB', parsePositiveInteger)
    .option('--cpus <n>', 'CPU quota in cores, e.g. 0.5', parsePositiveNumber)
    .option('--pids <n>', 'maximum number of processes and threads', parsePositiveInteger)
    .option('--env <name>', 'environment (base filesystem); the server default is "host"')
    .addHelpText('after', "\nExamples:\n  faas exec -- python3 -c 'print(42)'\n  faas exec -e NAME=world -- 'echo hello $NAME | tr a-z A-Z'\n  echo data | faas exec --stdin -- wc -c")
    .action(async (words: string[], options: ExecOptions, cmd: Command) => {
      const client = createClient(cmd);
      const request = await toExecRequest(words, options);
      let executionId: string | undefined;
      const stopForwarding = forwardInterrupts((signal) => {
        if (executionId === undefined) return false;
        client.killExecution(executionId, { signal, graceMs: 2_000 }).catch(() => undefined);
        return true;
      });
      try {
        const result = await client.executeWithCallbacks(
          { ...request, memoryMb: options.memory, cpuCores: options.cpus, pidsMax: options.pids, env: options.env },
          {
            ...liveOutputCallbacks(),
            onStart: (id) => {
              executionId = id;
              if (options.printId) process.stderr.write(`execution ${id}\n`);
            },
          },
        );
        exitWithResult(result);
      } finally {
        stopForwarding();
      }
    });
}
