/**
 * `faas ssh INSTANCE [-- cmd]` against a real executor and its SSH gateway, through the system
 * OpenSSH client, spawned as a user would run it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FaaSPlatformClient } from '@faas/sdk';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { BIN, REPO_ROOT, type Run } from './fixtures/run-cli.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;
let client: FaaSPlatformClient;
/** TMPDIR of the CLI: whatever it writes there (key, known_hosts) must be gone when it exits. */
const cliTmp = mkdtempSync(join(tmpdir(), 'faas-cli-ssh-tmp-'));

before(async () => {
  server = await startTestServer();
  client = new FaaSPlatformClient({ platformUrl: server.url, apiKey: server.apiKey });
});

after(async () => {
  await server?.close();
  rmSync(cliTmp, { recursive: true, force: true });
});

function faas(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      // HOME elsewhere: the user's ~/.ssh (config, known_hosts) must not matter.
      env: { ...process.env, FAAS_URL: server.url, FAAS_API_KEY: server.apiKey, TMPDIR: cliTmp, HOME: cliTmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('faas ssh INSTANCE', () => {
  test('issues a key when there is none, runs the command, exits with its status, leaves no key file', async () => {
    const instance = (await client.instances.create()).id;
    const run = await faas(['ssh', instance, '--', 'echo "hello $USER"; echo oops >&2; exit 5']);
    assert.equal(run.code, 5, run.stderr);
    assert.equal(run.stdout, 'hello user\n');
    assert.equal(run.stderr, 'oops\n', 'no host key question or warning: the host key was pinned');
    assert.equal((await client.listSSHKeys(instance)).length, 1);
    assert.deepEqual(readdirSync(cliTmp).filter((f) => f.startsWith('faas-ssh-')), []);
    // The key it issued is reused, not replaced, by the next call.
    const again = await faas(['ssh', instance, '--', 'true']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await client.listSSHKeys(instance)).length, 1);
  });

  test('passes dashed arguments to the command in the instance, not to ssh', async () => {
    const instance = (await client.instances.create()).id;
    // ssh would take -V as "print your version and exit".
    const run = await faas(['ssh', instance, '--', 'echo', '-V']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '-V\n');
  });

  test('an unknown instance is a FaasError, exit 1', async () => {
    const run = await faas(['ssh', 'inst-nope', '--', 'true']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /INSTANCE_NOT_FOUND/);
  });
});
