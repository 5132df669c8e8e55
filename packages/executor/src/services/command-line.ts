import { FaasError, type Language } from '@faas/protocol';

/** Linux refuses a single argument or environment string longer than this (MAX_ARG_STRLEN). */
const MAX_ARG_BYTES = 128 * 1024;

const INTERPRETERS: Record<Language, string[]> = {
  sh: ['/bin/sh', '-c'],
  bash: ['/bin/bash', '-c'],
  python: ['python3', '-c'],
  node: ['node', '-e'],
};

/** Turns `command` (argv) or `code` + `language` into the argv to run, with clear errors. */
export function toArgv(request: { command?: string[]; code?: string; language?: Language }): string[] {
  if ((request.command === undefined) === (request.code === undefined)) {
    throw new FaasError('VALIDATION_FAILED', 'give exactly one of "command" (argv) or "code" (source text)', { errors: [{ path: '/command', message: 'exactly one of command or code is required' }] });
  }
  if (request.command !== undefined && request.language !== undefined) {
    throw new FaasError('VALIDATION_FAILED', '"language" applies to "code", not to "command"', { errors: [{ path: '/language', message: 'only with code' }] });
  }
  const argv = request.command ?? [...INTERPRETERS[request.language ?? 'sh'], request.code!];
  if (argv[0]!.length === 0 || argv[0]!.includes('=')) {
    throw new FaasError('VALIDATION_FAILED', 'the program name may not be empty or contain "="', { errors: [{ path: '/command/0', message: 'invalid program name' }] });
  }
  for (const [i, arg] of argv.entries()) {
    if (arg.includes('\0')) throw new FaasError('VALIDATION_FAILED', `argument ${i} contains a NUL byte`, { errors: [{ path: `/command/${i}`, message: 'NUL byte' }] });
    if (Buffer.byteLength(arg) > MAX_ARG_BYTES) {
      throw new FaasError('LIMIT_OUT_OF_RANGE', `argument ${i} is ${Buffer.byteLength(arg)} bytes; the kernel takes at most ${MAX_ARG_BYTES} per argument (write long code to a file first)`, { limit: 'argument_bytes', max: MAX_ARG_BYTES });
    }
  }
  return argv;
}

export function checkWorkingDir(dir: string | undefined, fallback: string): string {
  const value = dir ?? fallback;
  if (!value.startsWith('/') || value.includes('\0')) {
    throw new FaasError('VALIDATION_FAILED', `working_dir must be an absolute path inside the instance, got ${JSON.stringify(value)}`, { errors: [{ path: '/working_dir', message: 'absolute path required' }] });
  }
  return value;
}
