/**
 * The options every "run something" command shares (`faas exec`, `faas instances exec`) and
 * their translation into an SDK request.
 */
import type { Command } from 'commander';
import type { ExecRequest } from '@faas/sdk';
import { parseEnvVar, parsePositiveInteger, toRunTarget } from './run-args.ts';

/** Parsed values of the shared run options. */
export interface RunOptions {
  envVar?: Record<string, string>;
  timeout?: number;
  workdir?: string;
  stdin?: boolean;
  printId?: boolean;
}

/** Adds `-e K=V`, `--timeout`, `--workdir`, `--stdin`, `--print-id` and the `-- <command...>` argument. */
export function addRunOptions(command: Command): Command {
  return command
    .option('-e, --env-var <NAME=VALUE>', 'environment variable for the process (repeatable)', parseEnvVar)
    .option('--timeout <ms>', 'kill the process tree after this many milliseconds (exit 124)', parsePositiveInteger)
    .option('--workdir <dir>', 'working directory inside the instance (default /workspace)')
    .option('--stdin', "send this command's standard input to the process")
    .option('--print-id', 'print "execution <id>" on standard error when it starts (for `faas logs`)')
    .argument('<command...>', 'what to run, after --: several words are an argv; one word with spaces is a shell string');
}

/** Reads all of standard input as UTF-8. */
export async function readStdin(stream: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The SDK request for the words after `--` and the shared options.
 *
 * @example
 * await toExecRequest(['sh', '-c', 'echo $A'], { envVar: { A: '1' } });
 * // { command: ['sh', '-c', 'echo $A'], envVars: { A: '1' } }
 */
export async function toExecRequest(words: string[], options: RunOptions, stdin: () => Promise<string> = readStdin): Promise<ExecRequest> {
  const request: ExecRequest = { ...toRunTarget(words) };
  if (options.envVar) request.envVars = options.envVar;
  if (options.timeout !== undefined) request.timeoutMs = options.timeout;
  if (options.workdir !== undefined) request.workingDir = options.workdir;
  if (options.stdin) request.stdin = await stdin();
  return request;
}
