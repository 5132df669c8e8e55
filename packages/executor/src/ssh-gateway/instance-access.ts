import type { Socket } from 'node:net';
import type { ConnectOptions, InteractiveProcess, InteractiveSpec } from '../runtime/types.ts';
import { WORKSPACE } from '../runtime/bwrap/host-environment.ts';
import { sandboxBaseEnv } from '../services/sandbox-env.ts';

/**
 * What the gateway may do to an instance once a client logged in to it: nothing more than
 * run processes as the sandbox user and open connections inside its network namespace.
 * app.ts builds it from the instance service and the runtime.
 */
export interface InstanceAccess {
  /** The instance's own environment variables (as executions get them); throws INSTANCE_NOT_RUNNING. */
  instanceEnv(instanceId: string): Promise<Readonly<Record<string, string>>>;
  execInteractive(instanceId: string, spec: InteractiveSpec): Promise<InteractiveProcess>;
  connect(instanceId: string, port: number, options?: ConnectOptions): Promise<Socket>;
}

/** Where the connection comes from and goes to, for SSH_CONNECTION / SSH_CLIENT. */
export interface ConnectionEnds {
  clientAddress: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
}

/** The working directory of every SSH process: the instance's default, as for executions. */
export const SESSION_WORKING_DIR = WORKSPACE;

/**
 * The environment of a process started for an SSH session: what a login would set, then the
 * instance's own variables (they win, as for executions), then what the client sent through
 * `env` requests (already filtered to the accepted names), then TERM of the PTY if there is one.
 */
export function sessionEnv(
  instanceId: string,
  instanceEnv: Readonly<Record<string, string>>,
  ends: ConnectionEnds,
  clientEnv: Readonly<Record<string, string>>,
  term: string | undefined,
): Record<string, string> {
  const { TERM: _plainTerm, ...base } = sandboxBaseEnv(instanceId); // a session's TERM is its PTY's, or none
  return {
    ...base,
    SHELL: '/bin/bash',
    SSH_CONNECTION: `${ends.clientAddress} ${ends.clientPort} ${ends.serverAddress} ${ends.serverPort}`,
    SSH_CLIENT: `${ends.clientAddress} ${ends.clientPort} ${ends.serverPort}`,
    ...instanceEnv,
    ...clientEnv,
    ...(term !== undefined ? { TERM: term } : {}),
  };
}

/** Names a client may set with `env` requests: Debian sshd's AcceptEnv (locale and colour hints). */
const ACCEPTED_ENV = /^(LANG|LC_[A-Z]+|COLORTERM|NO_COLOR)$/;
const MAX_ENV_VALUE = 256;
export const MAX_CLIENT_ENV_VARS = 32;

/** Whether a client's `env` request is taken: a harmless name, a short value without NUL. */
export function acceptsClientEnv(name: string, value: string): boolean {
  return ACCEPTED_ENV.test(name) && value.length <= MAX_ENV_VALUE && !value.includes('\0');
}
