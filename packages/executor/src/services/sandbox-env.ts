import { SANDBOX_HOME, SANDBOX_USER } from '../runtime/bwrap/host-environment.ts';

/**
 * What every process started in an instance (executions, probes, SSH sessions) finds in its
 * environment before the instance's and the caller's own variables go on top.
 */
export function sandboxBaseEnv(instanceId: string): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: SANDBOX_HOME,
    USER: SANDBOX_USER,
    LOGNAME: SANDBOX_USER,
    LANG: 'C.UTF-8',
    HOSTNAME: instanceId,
    TERM: 'dumb',
    FAAS_INSTANCE_ID: instanceId,
  };
}
