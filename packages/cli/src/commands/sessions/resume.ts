import type { Command } from 'commander';
import { parseEnvVar } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { formatDeadline } from '../../output/session-format.ts';

/** `faas session resume ID`: runs an ended session again from its latest checkpoint. */
export function registerSessionResume(session: Command): void {
  session
    .command('resume')
    .summary('run an ended session again from its latest checkpoint (same id and deadline)')
    .argument('<id>', 'session id (sess-...) or the id of its execution')
    .option('-e, --env-var <NAME=VALUE>', 'environment variable for the process (repeatable; values given at the start are not stored)', parseEnvVar)
    .option('--json', 'print the session as JSON')
    .action(async (id: string, options: { envVar?: Record<string, string>; json?: boolean }, cmd: Command) => {
      const resumed = await createClient(cmd).resumeSession(id, options.envVar ? { envVars: options.envVar } : {});
      process.stdout.write(
        options.json ? `${JSON.stringify(resumed, null, 2)}\n` : `${resumed.id} ${resumed.state}, execution ${resumed.executionId}, deadline ${formatDeadline(resumed.deadline)}\n`,
      );
    });
}
