/**
 * What every client command needs: a FaaSPlatformClient built from the global options, and
 * the one way errors are reported. Commands talk to the server only through the SDK.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { FaaSPlatformClient, isFaasError } from '@faas/sdk';

/** The global options (`faas --url ... --api-key ... <command>`). */
export interface GlobalOptions {
  url?: string;
  apiKey?: string;
}

/** Where a local server keeps its key with the default data dir, relative to the cwd. */
export const LOCAL_API_KEY_FILE = './.faas/api-key';

/**
 * The key of a local server started here with the default data dir, if there is one.
 * Unreadable or empty files count as absent: the server then answers 401 and says so.
 */
export function readLocalApiKey(file = LOCAL_API_KEY_FILE): string | undefined {
  try {
    const key = readFileSync(resolve(file), 'utf8').trim();
    return key === '' ? undefined : key;
  } catch {
    return undefined;
  }
}

/** The client for a command: `--url`/FAAS_URL, `--api-key`/FAAS_API_KEY, else ./.faas/api-key. */
export function createClient(command: Command): FaaSPlatformClient {
  const options = command.optsWithGlobals<GlobalOptions>();
  return new FaaSPlatformClient({ platformUrl: options.url, apiKey: options.apiKey ?? readLocalApiKey() });
}

/**
 * Prints an error the way every command does: `error: CODE: message` for a FaasError (never
 * a stack: the code says what happened), `error: message` for anything else.
 */
export function reportError(error: unknown): void {
  if (isFaasError(error)) {
    process.stderr.write(`error: ${error.code}: ${error.message}\n`);
  } else if (error instanceof Error) {
    process.stderr.write(`error: ${error.message}\n`);
    if (process.env.FAAS_DEBUG) process.stderr.write(`${error.stack ?? ''}\n`);
  } else {
    process.stderr.write(`error: ${String(error)}\n`);
  }
}

/** Exit codes of the CLI itself (executions exit with their own code). */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
