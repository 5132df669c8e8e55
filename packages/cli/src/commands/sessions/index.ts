import type { Command } from 'commander';
import { registerSessionCheckpoint } from './checkpoint.ts';
import { registerSessionExtend } from './extend.ts';
import { registerSessionHeartbeat } from './heartbeat.ts';
import { registerSessionResume } from './resume.ts';
import { registerSessionStart } from './start.ts';
import { registerSessionStatus } from './status.ts';
import { registerSessionStop } from './stop.ts';

/** `faas session <verb>`: long-running sessions (docs/sessions.md), one file per verb. */
export function registerSessionCommands(program: Command): Command {
  const session = program.command('session').alias('sessions').summary('long-running sessions: deadlines, heartbeats, checkpoints, extensions');
  registerSessionStart(session);
  registerSessionStatus(session);
  registerSessionHeartbeat(session);
  registerSessionExtend(session);
  registerSessionCheckpoint(session);
  registerSessionStop(session);
  registerSessionResume(session);
  return session;
}
