import type { Command } from 'commander';
import { parseNonNegativeInteger } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { exitWithResult, writeEvent } from '../../output/live-output.ts';

interface LogsOptions {
  follow?: boolean;
  after?: number;
}

/** `faas logs EXECUTION_ID [--follow] [--after SEQ]`: replays an execution's logged output. */
export function registerLogsCommand(program: Command): void {
  program
    .command('logs')
    .summary("print an execution's output")
    .description(
      "Print the output an execution has logged so far (stdout to stdout, stderr to stderr, in the " +
        'order it was written). With --follow, keep printing until the execution ends, then exit ' +
        'with its exit code.',
    )
    .argument('<execution-id>', 'the execution, e.g. exec-2b6x0q1f9s8d')
    .option('-f, --follow', 'keep streaming until the execution completes, then exit with its code')
    .option('--after <seq>', 'only events after this sequence number', parseNonNegativeInteger)
    .action(async (executionId: string, options: LogsOptions, cmd: Command) => {
      const client = createClient(cmd);
      const after = options.after ?? 0;
      if (!options.follow) {
        // Print up to what is logged now: the stream itself would wait for a running execution.
        const current = await client.getExecution(executionId);
        if (current.lastSeq <= after) return;
        for await (const event of client.streamExecution(executionId, { after })) {
          if (writeEvent(event) || event.seq >= current.lastSeq) break;
        }
        return;
      }
      for await (const event of client.streamExecution(executionId, { after })) {
        if (writeEvent(event)) break;
      }
      // The final record decides the exit code; an `error` event makes wait() throw its code.
      exitWithResult(await client.execution(executionId).wait());
    });
}
