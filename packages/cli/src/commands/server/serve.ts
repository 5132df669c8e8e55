import { join } from 'node:path';
import type { Command } from 'commander';
import { parseNonNegativeInteger } from '../../args/run-args.ts';
import type { GlobalOptions } from '../../cli-context.ts';

interface ServeCommandOptions {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
}

/** `faas serve`: runs the executor in this process until SIGINT or SIGTERM. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .summary('start the executor server')
    .description(
      'Start the executor server. Its API key is --api-key / FAAS_API_KEY, else the one in ' +
        '<data-dir>/api-key, else a new one generated there (mode 0600) and printed once.',
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', parseNonNegativeInteger, 8080)
    .option('--data-dir <dir>', 'where the server keeps everything', './.faas')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .action(async (options: ServeCommandOptions, cmd: Command) => {
      const { apiKey } = cmd.optsWithGlobals<GlobalOptions>();
      // Loaded only here, so client commands never load the server and its native modules.
      const { serve } = await import('@faas/executor');
      const server = await serve({ host: options.host, port: options.port, dataDir: options.dataDir, logLevel: options.logLevel, apiKey });
      process.stdout.write(`faas server listening on ${server.url}\n`);
      if (server.apiKeyGenerated) {
        process.stdout.write(`API key (generated, stored in ${join(server.dataDir, 'api-key')}): ${server.apiKey}\n`);
      }
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals): void => {
          if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143); // a second signal: do not wait
          stopping = true;
          process.stderr.write(`faas: ${signal}: shutting down\n`);
          server.close().then(resolve, (error: unknown) => {
            process.stderr.write(`error: shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
