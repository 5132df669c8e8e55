import type { Command } from 'commander';
import { addRunOptions, toExecRequest, type RunOptions } from '../../args/run-options.ts';
import { createClient } from '../../cli-context.ts';
import { exitWithResult, forwardInterrupts, liveOutputCallbacks } from '../../output/live-output.ts';

/** `faas instances exec ID [options] -- cmd args...`: runs in an existing instance, output live. */
export function registerInstancesExec(instances: Command): void {
  const command = instances
    .command('exec')
    .summary('run a command in an instance')
    .description(
      'Run a command in an existing instance, writing its output live, and exit with its exit code ' +
        '(124 on timeout, 137 when out of memory, 128+N when ended by signal N).',
    )
    .argument('<instance-id>', 'the instance to run in');
  addRunOptions(command).action(async (instanceId: string, words: string[], options: RunOptions, cmd: Command) => {
    const client = createClient(cmd);
    const handle = await client.instances.start(instanceId, await toExecRequest(words, options));
    if (options.printId) process.stderr.write(`execution ${handle.id}\n`);
    const stopForwarding = forwardInterrupts((signal) => {
      handle.kill({ signal, graceMs: 2_000 }).catch(() => undefined);
      return true;
    });
    try {
      exitWithResult(await handle.wait(liveOutputCallbacks()));
    } finally {
      stopForwarding();
    }
  });
}
