import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { build, type App } from '../src/app.ts';
import { defaultConfig } from '../src/config.ts';
import { redactUrl } from '../src/routes/auth.ts';
import { BwrapRuntime } from '../src/runtime/bwrap/bwrap-runtime.ts';
import { detectCgroupLayout } from '../src/runtime/cgroups/layout.ts';
import { cgroupPrefixFor } from '../src/serve.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { systemClock } from '../src/util/clock.ts';

const KEY = 'faas_test_secret_key_0123456789';

describe('logs never hold the API key', () => {
  let app: App;
  let url: string;
  let dataDir: string;
  const lines: string[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'faas-logs-'));
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const logger = pino({ level: 'debug' }, sink);
    const config = defaultConfig({ dataDir, logLevel: 'debug' });
    const runtime = new BwrapRuntime({ dataDir, layout: detectCgroupLayout(), cgroupPrefix: cgroupPrefixFor(dataDir), clock: systemClock, logger });
    const store = await openSqliteStore({ path: join(dataDir, 'faas.db') });
    app = await build({ store, runtime, apiKey: KEY, logger, clock: systemClock }, config);
    await app.fastify.listen({ host: '127.0.0.1', port: 0 });
    const address = app.fastify.server.address() as { port: number };
    url = `http://127.0.0.1:${address.port}`;
  });
  after(async () => {
    await app?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('redacts access_token in logged URLs and logs no Authorization header', async () => {
    const res = await fetch(`${url}/api/v1/execute`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ code: 'echo hi', background: true }),
    });
    const { id } = (await res.json()) as { id: string };
    const sse = await fetch(`${url}/api/v1/executions/${id}/events?after=0&access_token=${KEY}`);
    await sse.text();
    await fetch(`${url}/api/v1/instances?access_token=${KEY}`); // refused, and logged
    const log = lines.join('');
    assert.match(log, /access_token=\[redacted\]/, 'the streaming request was logged, redacted');
    assert.ok(!log.includes(KEY), 'the key appears in the log');
  });

  it('logs no port access token: not from the query, the header or the cookie', async () => {
    const TOKEN = 'port_token_secret_0123456789';
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const { id } = (await (await fetch(`${url}/api/v1/instances`, { method: 'POST', headers, body: '{}' })).json()) as { id: string };
    const exposed = await fetch(`${url}/api/v1/instances/${id}/ports`, { method: 'POST', headers, body: JSON.stringify({ port: 8000, token: TOKEN }) });
    assert.equal(exposed.status, 201);
    // Nothing listens: 502 answers, logged as server-side failures, with their URLs.
    for (const init of [{}, { headers: { 'x-faas-port-token': TOKEN } }, { headers: { cookie: `faas_port_token=${TOKEN}` } }] as RequestInit[]) {
      await (await fetch(`${url}/p/${id}/8000/x?faas_token=${TOKEN}`, init)).text();
    }
    await (await fetch(`${url}/p/${id}/8000/x?faas_token=wrong_${TOKEN}`)).text();
    const log = lines.join('');
    assert.match(log, /faas_token=\[redacted\]/, 'the requests were logged, redacted');
    assert.ok(!log.includes(TOKEN), 'a port token appears in the log');
  });

  it('redactUrl removes every access_token value and keeps the rest', () => {
    assert.equal(redactUrl('/a?access_token=x&after=3'), '/a?access_token=[redacted]&after=3');
    assert.equal(redactUrl('/a?after=3&access_token=x'), '/a?after=3&access_token=[redacted]');
    assert.equal(redactUrl('/a?after=3'), '/a?after=3');
  });
});
