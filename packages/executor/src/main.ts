import { serve } from './serve.ts';

/** Starts the server from environment settings; `faas serve` is the usual way in. */
const server = await serve({
  host: process.env.FAAS_HOST,
  port: process.env.FAAS_PORT ? Number(process.env.FAAS_PORT) : undefined,
  dataDir: process.env.FAAS_DATA_DIR,
});
process.stdout.write(`faas listening on ${server.url}\n`);
if (server.ssh !== null) process.stdout.write(`faas ssh gateway on ${server.ssh.host}:${server.ssh.port} (host key ${server.ssh.hostKeyFingerprint})\n`);
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
