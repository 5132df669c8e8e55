/**
 * `faas wait` and the SDK's checkReadiness / waitForReady against a real executor.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NotReadyError, isFaasError, type ReadinessRound } from '@faas/sdk';
import { useServerWithInstance } from '../../executor/test/fixtures/server-instance.ts';
import { runFaas } from './fixtures/run-cli.ts';

const ctx = useServerWithInstance();

async function exec(code: string): Promise<string> {
  const res = await ctx.server.request('POST', `/api/v1/instances/${ctx.instance}/exec`, { code });
  assert.equal(res.status, 200, res.text);
  return res.body.id;
}

describe('faas wait', () => {
  test('exits 0 once a service started meanwhile answers, showing the rounds on stderr', async () => {
    await exec('rm -f /workspace/ready; (sleep 1.5; touch /workspace/ready; exec python3 -m http.server 8000 --bind 127.0.0.1) >/dev/null 2>&1 &');
    const run = await runFaas(ctx.server, ['wait', ctx.instance, '--http', ':8000/', '--tcp', '8000', '--cmd', 'test -f /workspace/ready', '--file', '/workspace/ready', '--timeout', '20s', '--period', '100ms']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^ready after \d+ checks \(\d+ ms\)\n$/);
    // Not a terminal: a line per change, the first with the service's probes failing (the
    // file may exist already by then: the CLI's own start-up takes a while).
    const lines = run.stderr.trim().split('\n');
    assert.match(lines[0]!, /^\[1\] ✗ http :8000\/: .*ECONNREFUSED.*  ✗ tcp 8000: .*ECONNREFUSED.*  [✓✗] cmd "test -f \/workspace\/ready".*  [✓✗] file \/workspace\/ready/);
    assert.match(lines.at(-1)!, /^\[\d+\] ✓ http :8000\/  ✓ tcp 8000  ✓ cmd "test -f \/workspace\/ready"  ✓ file \/workspace\/ready$/);
    assert.ok(lines.length < 10, `one line per change, not per round: ${lines.length}`);
  });

  test('exits 1 on timeout with every probe\'s last failure', async () => {
    const log = await exec('echo starting');
    const run = await runFaas(ctx.server, ['wait', ctx.instance, '--tcp', '8999', '--file', '/workspace/never', '--log', `${log}:^ready$`, '--timeout', '600ms', '--period', '100ms']);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /not ready: timed out after \d+ ms \(\d+ checks\)/);
    assert.match(run.stderr, /✗ tcp 8999: nothing accepts connections at 127\.0\.0\.1:8999/);
    assert.match(run.stderr, /✗ file \/workspace\/never: \/workspace\/never does not exist/);
    assert.match(run.stderr, /✗ log exec-\S+:\^ready\$: no line of the output/);
  });

  test('--json prints the final status; a bad probe is a usage error; an invalid one the server\'s code', async () => {
    const json = await runFaas(ctx.server, ['wait', ctx.instance, '--tcp', '8000', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).ready, true);
    assert.equal(json.stderr, '');
    const usage = await runFaas(ctx.server, ['wait', ctx.instance, '--tcp', '99999']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /port must be 1\.\.65535/);
    const none = await runFaas(ctx.server, ['wait', ctx.instance]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /nothing to wait for/);
    const invalid = await runFaas(ctx.server, ['wait', ctx.instance, '--log', 'exec-x:(']);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^error: INVALID_PROBE: probe 0 \(log\): pattern is not a valid regular expression/);
  });
});

describe('SDK readiness', () => {
  test('checkReadiness resolves with the status, ready or not, in camelCase', async () => {
    const down = await ctx.client.checkReadiness(ctx.instance, { probes: [{ type: 'tcp', port: 8999 }] });
    assert.equal(down.ready, false);
    assert.equal(down.checksPerformed, 1);
    assert.match(down.probes[0]!.lastFailure!, /ECONNREFUSED/);
    const up = await ctx.client.checkReadiness(ctx.instance, { probes: [{ type: 'http', port: 8000, path: '/', expectedStatus: [200] }], successThreshold: 2, periodMs: 50 });
    assert.equal(up.ready, true);
    assert.equal(up.checksPerformed, 2);
    assert.ok(up.lastCheck instanceof Date);
  });

  test('waitForReady calls onProbe for every round and resolves when ready', async () => {
    const exec = await (await ctx.client.instances.get(ctx.instance)).start({ code: 'sleep 0.3; echo "server up"; sleep 30' });
    const rounds: ReadinessRound[] = [];
    const status = await ctx.client.waitForReady(ctx.instance, { probes: [{ type: 'log', executionId: exec.id, pattern: /^server up$/ }], periodMs: 50, timeout: 10_000, onProbe: (r) => rounds.push(r) });
    assert.equal(status.ready, true);
    assert.ok(rounds.length >= 2, `${rounds.length} rounds`);
    assert.deepEqual(rounds.map((r) => r.round), rounds.map((_, i) => i + 1));
    assert.equal(rounds.at(-1)!.ok, true);
    assert.equal(rounds.length, status.checksPerformed);
    await ctx.client.killExecution(exec.id);
  });

  test('waitForReady rejects with NotReadyError (NOT_READY) carrying every probe\'s last failure', async () => {
    const error = await ctx.client.waitForReady(ctx.instance, { probes: [{ type: 'tcp', port: 8999 }, { type: 'file', path: '/nope' }], timeout: 300, periodMs: 100 }).then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof NotReadyError);
    assert.ok(isFaasError(error));
    assert.equal(error.code, 'NOT_READY');
    assert.equal(error.readiness.timedOut, true);
    assert.deepEqual(error.readiness.probes.map((p) => p.lastFailure !== null), [true, true]);
  });

  test('waitForReady rejects with the server\'s code for a bad probe, and with the signal\'s reason when aborted', async () => {
    await assert.rejects(ctx.client.waitForReady(ctx.instance, { probes: [{ type: 'tcp', port: 0 }] }), { code: 'INVALID_PROBE' });
    const controller = new AbortController();
    const reason = new Error('stop');
    setTimeout(() => controller.abort(reason), 200);
    await assert.rejects(ctx.client.waitForReady(ctx.instance, { probes: [{ type: 'tcp', port: 8999 }], periodMs: 50, signal: controller.signal }), (e) => e === reason);
  });
});
