/**
 * `faas exec`'s execution-mode options and their translation into the mode fields of an SDK
 * request. A mode-specific option implies its mode, so `--branch-from REF` alone is enough.
 */
import { Option, type Command } from 'commander';
import type { ExecuteRequest, ExecutionMode } from '@faas/sdk';
import { UsageError } from '../usage-error.ts';

export const EXECUTION_MODES: readonly ExecutionMode[] = ['ephemeral', 'cached', 'checkpointed', 'branched', 'persistent'];

/** Parsed values of the mode options. */
export interface ModeOptions {
  mode?: ExecutionMode;
  cacheKey?: string;
  cacheFailures?: boolean;
  checkpoint?: string;
  branchFrom?: string;
  function?: string;
  instance?: string;
}

/** Adds `--mode` and the fields of each mode. */
export function addModeOptions(command: Command): Command {
  return command
    .addOption(new Option('--mode <mode>', 'execution mode (default ephemeral, or the one the options below imply)').choices(EXECUTION_MODES))
    .option('--cache-key <key>', 'cached: an extra cache key input, e.g. a version of the data read')
    .option('--cache-failures', 'cached: also cache a non-zero exit code')
    .option('--checkpoint <snapshot>', 'checkpointed: restore this snapshot (id or content hash) first')
    .option('--branch-from <ref>', 'branched: run on a copy of this snapshot, or of the one an execution left')
    .addOption(new Option('--function <id>', "persistent: the function's long-lived instance (created on first use)").conflicts('instance'))
    .option('--instance <id>', 'persistent: run in this existing instance');
}

/** Which mode each option belongs to. */
const IMPLIED: Array<[keyof ModeOptions, string, ExecutionMode]> = [
  ['cacheKey', '--cache-key', 'cached'],
  ['cacheFailures', '--cache-failures', 'cached'],
  ['checkpoint', '--checkpoint', 'checkpointed'],
  ['branchFrom', '--branch-from', 'branched'],
  ['function', '--function', 'persistent'],
  ['instance', '--instance', 'persistent'],
];

/**
 * The mode fields of the request: `--mode` when given, else the mode the options imply
 * (ephemeral when none). Options of two modes, or of another mode than `--mode`, are a usage
 * error; a mode missing what it needs (branched without --branch-from) is left to the server.
 *
 * @example
 * toModeFields({ branchFrom: 'snap-1' }); // { mode: 'branched', branchFrom: 'snap-1' }
 * toModeFields({ mode: 'cached' });       // { mode: 'cached' }
 */
export function toModeFields(options: ModeOptions): Pick<ExecuteRequest, 'mode' | 'cacheKey' | 'cacheFailures' | 'checkpoint' | 'branchFrom' | 'functionId' | 'instanceId'> {
  let mode = options.mode;
  for (const [key, flag, implied] of IMPLIED) {
    if (options[key] === undefined) continue;
    if (mode === undefined) mode = implied;
    else if (mode !== implied) throw new UsageError(`${flag} is an option of mode ${implied}, not ${mode}`);
  }
  const fields: ReturnType<typeof toModeFields> = {};
  if (mode !== undefined) fields.mode = mode;
  if (options.cacheKey !== undefined) fields.cacheKey = options.cacheKey;
  if (options.cacheFailures) fields.cacheFailures = true;
  if (options.checkpoint !== undefined) fields.checkpoint = options.checkpoint;
  if (options.branchFrom !== undefined) fields.branchFrom = options.branchFrom;
  if (options.function !== undefined) fields.functionId = options.function;
  if (options.instance !== undefined) fields.instanceId = options.instance;
  return fields;
}

/**
 * Whether the output can be streamed live: modes whose result carries what the mode adds
 * (cached, snapshot ids) are run as one request, their output written when they end.
 *
 * @example
 * streamsLive('ephemeral'); // true
 */
export function streamsLive(mode: ExecutionMode | undefined): boolean {
  return mode === undefined || mode === 'ephemeral' || mode === 'persistent';
}
