import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { parseNonNegativeInteger } from '../../args/run-args.ts';
import type { GlobalOptions } from '../../cli-context.ts';

interface ServeCommandOptions {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
  /** -1: off */
  sshPort?: number;
  sshHost?: string;
  /** false with --no-ssh */
  ssh: boolean;
  runtime?: 'bwrap' | 'vm';
}

function parseRuntime(value: string): 'bwrap' | 'vm' {
  if (value !== 'bwrap' && value !== 'vm') throw new InvalidArgumentError(`expected "bwrap" or "vm", got "${value}"`);
  return value;
}

/**
 * `--ssh-port`: a port (0 picks a free one), or -1 / "off" for no SSH gateway, returned as -1
 * (commander turns a parser's null into "").
 */
function parseSshPort(value: string): number {
  if (value === '-1' || value === 'off') return -1;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65_535) throw new InvalidArgumentError(`expected a port (0-65535), -1 or "off", got "${value}"`);
  return Number(value);
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
    .option('--ssh-port <port>', 'port of the SSH gateway (0 picks a free one; -1 or "off" turns it off; default 2222, or FAAS_SSH_PORT)', parseSshPort)
    .option('--ssh-host <host>', 'address the SSH gateway listens on (default: --host)')
    .option('--no-ssh', 'run no SSH gateway')
    .option('--runtime <name>', 'sandbox backend: bwrap (namespaces) or vm (QEMU machines with memory snapshots; default bwrap, or FAAS_RUNTIME)', parseRuntime)
    .option('--data-dir <dir>', 'where the server keeps everything', './.faas')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .action(async (options: ServeCommandOptions, cmd: Command) => {
      const { apiKey } = cmd.optsWithGlobals<GlobalOptions>();
      // Loaded only here, so client commands never load the server and its native modules.
      const { serve } = await import('@faas/executor');
      const config = {
        ...(options.ssh === false || options.sshPort === -1 ? { sshPort: null } : options.sshPort !== undefined ? { sshPort: options.sshPort } : {}),
        ...(options.sshHost !== undefined ? { sshHost: options.sshHost } : {}),
        ...(options.runtime !== undefined ? { runtime: options.runtime } : {}),
      };
      const server = await serve({ host: options.host, port: options.port, dataDir: options.dataDir, logLevel: options.logLevel, apiKey, config });
      process.stdout.write(`faas server listening on ${server.url} (runtime ${server.runtime})\n`);
      if (server.ssh !== null) process.stdout.write(`SSH gateway on ${server.ssh.host}:${server.ssh.port}, host key ${server.ssh.hostKeyFingerprint}\n`);
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
