import type { Command } from 'commander';
import { parseNonNegativeInteger } from '../../args/run-args.ts';
import { createClient } from '../../cli-context.ts';
import { formatBytes } from '../../output/table.ts';
import { UsageError } from '../../usage-error.ts';

interface InvalidateOptions {
  all?: boolean;
  key?: string;
  env?: string;
  olderThan?: number;
  json?: boolean;
}

/** `faas cache invalidate|stats`: the result cache of cached mode. */
export function registerCacheCommands(program: Command): void {
  const cache = program.command('cache').summary('the result cache of `faas exec --mode cached`');
  cache
    .command('invalidate')
    .summary('drop cached results: all, or by key, environment or age')
    .description('Drop cached results: every one with --all, else those matching every condition given. Prints how many were removed and how many remain.')
    .option('--all', 'every entry')
    .option('--key <key>', 'entries stored with this --cache-key')
    .option('--env <name>', 'entries of this environment')
    .option('--older-than <ms>', 'entries stored more than this many milliseconds ago', parseNonNegativeInteger)
    .option('--json', 'print {removed, remaining} as JSON')
    .action(async (options: InvalidateOptions, cmd: Command) => {
      if (!options.all && options.key === undefined && options.env === undefined && options.olderThan === undefined) {
        throw new UsageError('say what to drop: --all, --key, --env or --older-than');
      }
      const result = await createClient(cmd).invalidateCache({ all: options.all, cacheKey: options.key, env: options.env, olderThanMs: options.olderThan });
      process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : `removed ${result.removed}, ${result.remaining} remaining\n`);
    });
  cache
    .command('stats')
    .summary('entries, size, bounds and hit counts of the result cache')
    .option('--json', 'print the stats as JSON')
    .action(async (options: { json?: boolean }, cmd: Command) => {
      const stats = await createClient(cmd).cacheStats();
      if (options.json) {
        process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
        return;
      }
      const lookups = stats.hits + stats.misses;
      const lines: Array<[string, string]> = [
        ['entries', String(stats.entries)],
        ['size', `${formatBytes(stats.bytes)} of ${formatBytes(stats.maxBytes)}`],
        ['ttl', `${stats.ttlMs} ms`],
        ['hits', `${stats.hits}${lookups > 0 ? ` (${Math.round((100 * stats.hits) / lookups)}% of ${lookups} lookups)` : ''}`],
        ['misses', String(stats.misses)],
        ['evictions', String(stats.evictions)],
      ];
      const width = Math.max(...lines.map(([field]) => field.length));
      process.stdout.write(lines.map(([field, value]) => `${field.padEnd(width)}  ${value}\n`).join(''));
    });
}
