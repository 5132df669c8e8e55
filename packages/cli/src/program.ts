/**
 * The `faas` command tree and the rules every command shares: global options, error output,
 * exit codes (the command's own, 1 for a failure, 2 for a usage mistake).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { EXIT_FAILURE, EXIT_USAGE, LOCAL_API_KEY_FILE, reportError } from './cli-context.ts';
import { registerBranchCommand } from './commands/branches/branch.ts';
import { registerMergeCommand } from './commands/branches/merge.ts';
import { registerCacheCommands } from './commands/cache/index.ts';
import { registerEnvironmentCommands } from './commands/environments/index.ts';
import { registerExecCommand } from './commands/executions/exec.ts';
import { registerLogsCommand } from './commands/executions/logs.ts';
import { registerInstancesCommands } from './commands/instances/index.ts';
import { registerServeCommand } from './commands/server/serve.ts';
import { registerSessionCommands } from './commands/sessions/index.ts';
import { registerSnapshotCommands } from './commands/snapshots/index.ts';
import { registerSshCommands } from './commands/ssh/index.ts';
import { registerPortCommands } from './commands/ports/index.ts';
import { registerSyncCommand } from './commands/sync/sync.ts';
import { registerWaitCommand } from './commands/readiness/wait.ts';
import { UsageError } from './usage-error.ts';

function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Builds a fresh command tree (tests build their own, so no state leaks between runs). */
export function buildProgram(): Command {
  const program = new Command('faas')
    .description('faas: run code in sandboxed instances on a faas server')
    .version(cliVersion(), '-V, --version')
    .addOption(new Option('--url <url>', 'server URL (default http://127.0.0.1:8080)').env('FAAS_URL'))
    .addOption(
      new Option('--api-key <key>', `API key; if neither this nor FAAS_API_KEY is set, the key in ${LOCAL_API_KEY_FILE} (where a local server with the default data dir keeps it) is used when that file exists`).env('FAAS_API_KEY'),
    )
    // Set before the subcommands are added: .command() copies these settings to each of them.
    .exitOverride()
    .showSuggestionAfterError();
  registerServeCommand(program);
  registerExecCommand(program);
  registerLogsCommand(program);
  registerInstancesCommands(program);
  registerSnapshotCommands(program);
  registerBranchCommand(program);
  registerMergeCommand(program);
  registerCacheCommands(program);
  registerEnvironmentCommands(program);
  registerSyncCommand(program);
  registerWaitCommand(program);
  registerSshCommands(program);
  registerPortCommands(program);
  registerSessionCommands(program);
  return program;
}

/** Runs the CLI on `argv` (as process.argv) and resolves with the exit code. */
export async function runCli(argv: string[], program: Command = buildProgram()): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message (or the help) already.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    reportError(error);
    return error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
}
