import type { Command } from 'commander';
import { generateExecutionId, type ExecuteRequest, type ExecutionResult, type FaaSPlatformClient } from '@faas/sdk';
import { addModeOptions, streamsLive, toModeFields, type ModeOptions } from '../../args/mode-options.ts';
import { parsePositiveInteger, parsePositiveNumber } from '../../args/run-args.ts';
import { addRunOptions, toExecRequest, type RunOptions } from '../../args/run-options.ts';
import { createClient } from '../../cli-context.ts';
import { exitWithResult, forwardInterrupts, liveOutputCallbacks } from '../../output/live-output.ts';

interface ExecOptions extends RunOptions, ModeOptions {
  memory?: number;
  cpus?: number;
  pids?: number;
  env?: string;
  printSnapshotId?: boolean;
  json?: boolean;
}

/** `faas exec [options] -- cmd args...`: a one-shot execution, in a fresh instance unless the mode says otherwise. */
export function registerExecCommand(program: Command): void {
  const command = program
    .command('exec')
    .summary('run a command once in a fresh instance (or per --mode)')
    .description(
      'Run a command once in a fresh instance that is deleted afterwards. Output is written live; ' +
        'faas exits with the command\'s exit code (124 on timeout, 137 when out of memory, 128+N when ' +
        'ended by signal N). --mode picks another execution mode (docs/execution-modes.md); the ' +
        'cached, checkpointed and branched modes write the output when the command ends.',
    );
  addModeOptions(
    addRunOptions(command)
      .option('--memory <mb>', 'memory limit in MiB', parsePositiveInteger)
      .option('--cpus <n>', 'CPU quota in cores, e.g. 0.5', parsePositiveNumber)
      .option('--pids <n>', 'maximum number of processes and threads', parsePositiveInteger)
      .option('--env <name>', 'environment (base filesystem); the server default is "host"'),
  )
    .option('--print-snapshot-id', 'checkpointed and branched: print "snapshot <id>" on standard error when it ends')
    .option('--json', 'print the execution record as JSON instead of its output (exit code as usual)')
    .addHelpText(
      'after',
      "\nExamples:\n  faas exec -- python3 -c 'print(42)'\n  faas exec -e NAME=world -- 'echo hello $NAME | tr a-z A-Z'\n  echo data | faas exec --stdin -- wc -c\n" +
        "  faas exec --mode checkpointed --print-snapshot-id -- 'pip install -r requirements.txt'\n  faas exec --branch-from snap-0a1b2c3d4e5f6g7h -- pytest\n" +
        "  faas exec --cache-key data-v2 -- ./expensive.sh\n  faas exec --function counter -- 'echo 1 >> n; wc -l < n'",
    )
    .action(async (words: string[], options: ExecOptions, cmd: Command) => {
      const client = createClient(cmd);
      const request: ExecuteRequest = {
        ...(await toExecRequest(words, options)),
        ...toModeFields(options),
        memoryMb: options.memory,
        cpuCores: options.cpus,
        pidsMax: options.pids,
        env: options.env,
      };
      const live = streamsLive(request.mode) && !options.json;
      const result = live ? await runLive(client, request, options) : await runWhole(client, request, options);
      if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      if (options.printSnapshotId && result.snapshotId) process.stderr.write(`snapshot ${result.snapshotId}\n`);
      exitWithResult(result);
    });
}

/** Background start, output written as it comes. */
async function runLive(client: FaaSPlatformClient, request: ExecuteRequest, options: ExecOptions): Promise<ExecutionResult> {
  let executionId: string | undefined;
  const stopForwarding = forwardInterrupts((signal) => {
    if (executionId === undefined) return false;
    client.killExecution(executionId, { signal, graceMs: 2_000 }).catch(() => undefined);
    return true;
  });
  try {
    return await client.executeWithCallbacks(request, {
      ...liveOutputCallbacks(),
      onStart: (id) => {
        executionId = id;
        if (options.printId) process.stderr.write(`execution ${id}\n`);
      },
    });
  } finally {
    stopForwarding();
  }
}

/** One request answered with the whole record (what the mode adds included), output written at the end. */
async function runWhole(client: FaaSPlatformClient, request: ExecuteRequest, options: ExecOptions): Promise<ExecutionResult> {
  // Our own id, so Ctrl-C can kill it while the request waits.
  const id = generateExecutionId();
  if (options.printId && request.mode !== 'cached') process.stderr.write(`execution ${id}\n`);
  const stopForwarding = forwardInterrupts((signal) => {
    client.killExecution(id, { signal, graceMs: 2_000 }).catch(() => undefined);
    return true;
  });
  try {
    const result = await client.execute({ ...request, id });
    // A cached hit is the stored execution, under its original id.
    if (options.printId && request.mode === 'cached') process.stderr.write(`execution ${result.id}${result.cached ? ' (cached)' : ''}\n`);
    if (!options.json) {
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
    }
    return result;
  } finally {
    stopForwarding();
  }
}
