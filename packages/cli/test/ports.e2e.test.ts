/**
 * `faas port expose|ls|rm` against a real executor, spawned as a user would run them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useServerWithInstance } from '../../executor/test/fixtures/server-instance.ts';
import { runFaas, runFaasOk, type Run } from './fixtures/run-cli.ts';

const ctx = useServerWithInstance();

function faas(args: string[]): Promise<Run> {
  return runFaas(ctx.server, args);
}

function ok(args: string[]): Promise<string> {
  return runFaasOk(ctx.server, args);
}

describe('faas port', () => {
  test('expose prints the URL; --token prints the token once and a link; ls lists both; rm un-exposes', async () => {
    const open = await ok(['port', 'expose', ctx.instance, '8000']);
    assert.match(open, new RegExp(`^url: +${ctx.server.url}/p/${ctx.instance}/8000/$`, 'm'));
    assert.match(open, /no token/);
    const guarded = await ok(['port', 'expose', ctx.instance, '8001', '--token']);
    const token = /^token: +(\S+)$/m.exec(guarded)![1]!;
    assert.match(guarded, new RegExp(`^link: +${ctx.server.url}/p/${ctx.instance}/8001/\\?faas_token=${token}$`, 'm'));
    const own = JSON.parse(await ok(['port', 'expose', ctx.instance, '8002', '--token', 'my-own-token-0123456789', '--json'])) as { token: string; tokenRequired: boolean };
    assert.deepEqual([own.token, own.tokenRequired], ['my-own-token-0123456789', true]);

    const table = (await ok(['port', 'ls', ctx.instance])).trim().split('\n');
    assert.match(table[0]!, /^PORT +TOKEN +URL +CREATED$/);
    assert.match(table[1]!, new RegExp(`^8000 +none +${ctx.server.url}/p/${ctx.instance}/8000/ `));
    assert.match(table[2]!, /^8001 +required /);
    assert.equal(table.length, 4);
    assert.ok(!table.join('\n').includes(token), 'ls never shows a token');
    const json = JSON.parse(await ok(['port', 'ls', ctx.instance, '--json'])) as Array<{ port: number }>;
    assert.deepEqual(json.map((p) => p.port), [8000, 8001, 8002]);

    assert.equal(await ok(['port', 'rm', ctx.instance, '8000', '8002']), '8000 un-exposed\n8002 un-exposed\n');
    assert.deepEqual((await ctx.client.listPorts(ctx.instance)).map((p) => p.port), [8001]);
  });

  test('errors: an unexposed port fails with its code and exit 1; a bad port is a usage error (exit 2)', async () => {
    const missing = await faas(['port', 'rm', ctx.instance, '9999']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /PORT_NOT_EXPOSED/);
    const twice = await faas(['port', 'expose', ctx.instance, '8001']);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /PORT_ALREADY_EXPOSED/);
    for (const bad of ['0', '70000', 'abc']) {
      const run = await faas(['port', 'expose', ctx.instance, bad]);
      assert.equal(run.code, 2, `port ${bad}: ${run.stderr}`);
      assert.match(run.stderr, /expected a port in 1\.\.65535/);
    }
    const unknown = await faas(['port', 'ls', 'inst-doesnotexist']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /INSTANCE_NOT_FOUND/);
  });
});
