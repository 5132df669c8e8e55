import { ENV_VAR_NAME_PATTERN, FaasError } from '@faas/protocol';

/** Checks names and values of environment variables; throws INVALID_ENV_VAR naming the first bad one. */
export function checkEnvVars(vars: Record<string, string> | undefined): Record<string, string> {
  if (vars === undefined) return {};
  for (const [name, value] of Object.entries(vars)) {
    if (!ENV_VAR_NAME_PATTERN.test(name)) {
      throw new FaasError('INVALID_ENV_VAR', `invalid environment variable name ${JSON.stringify(name)}: use letters, digits and _ and do not start with a digit`, { name });
    }
    if (name.length > 1024) throw new FaasError('INVALID_ENV_VAR', `environment variable name too long (${name.length} > 1024)`, { name: name.slice(0, 64) });
    if (value.includes('\0')) throw new FaasError('INVALID_ENV_VAR', `environment variable ${name} contains a NUL byte`, { name });
  }
  return vars;
}
