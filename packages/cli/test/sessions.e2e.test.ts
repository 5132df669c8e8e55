/**
 * `faas session start|status|heartbeat|extend|checkpoint|stop|resume` against a real executor,
 * with short durations.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer } from '../../executor/test/fixtures/test-server.ts';
import { runFaas } from './fixtures/run-cli.ts';

let server: Awaited<ReturnType<typeof startTestServer>>;

before(async () => {
  server = await startTestServer({ sshPort: null });
});

after(async () => {
  await server?.close();
});

describe('faas session', () => {
  test('start prints the session and its deadline; status, extend, checkpoint, stop and resume act on it', async () => {
    const start = await runFaas(server, ['session', 'start', '--max-duration', '2m', '--max-extensions', '1', '--grace', '200ms', '--', 'sleep', '120']);
    assert.equal(start.code, 0, start.stderr);
    const id = /^session (sess-\S+)$/m.exec(start.stdout)?.[1];
    assert.ok(id, start.stdout);
    assert.match(start.stdout, /^deadline \S+Z \(in (1m 59s|2m)\)$/m);

    const status = await runFaas(server, ['session', 'status', id]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^state +running$/m);
    assert.match(status.stdout, /^deadline +\S+Z \(in \d/m);
    assert.match(status.stdout, /^last heartbeat +\S+Z \(\d+s ago\)/m);
    assert.match(status.stdout, /^extensions +0 of 1$/m);
    const before = JSON.parse((await runFaas(server, ['session', 'status', id, '--json'])).stdout) as { deadline: string; state: string };
    assert.equal(before.state, 'running');

    const extend = await runFaas(server, ['session', 'extend', id, '30s', '--json']);
    assert.equal(extend.code, 0, extend.stderr);
    assert.equal(new Date(JSON.parse(extend.stdout).deadline).getTime(), new Date(before.deadline).getTime() + 30_000);
    const refused = await runFaas(server, ['session', 'extend', id, '30s']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: SESSION_EXTENSION_REFUSED: /);

    const heartbeat = await runFaas(server, ['session', 'heartbeat', id]);
    assert.equal(heartbeat.code, 0, heartbeat.stderr);
    assert.match(heartbeat.stdout, /^running, deadline \S+Z \(in /);

    const checkpoint = await runFaas(server, ['session', 'checkpoint', id]);
    assert.equal(checkpoint.code, 0, checkpoint.stderr);
    assert.match(checkpoint.stdout, /^snap-\S+\n$/);

    const stop = await runFaas(server, ['session', 'stop', id]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, new RegExp(`^${id} terminated \\(stopped\\), last checkpoint snap-\\S+\\n$`));

    const resume = await runFaas(server, ['session', 'resume', id, '--json']);
    assert.equal(resume.code, 0, resume.stderr);
    const resumed = JSON.parse(resume.stdout) as { id: string; state: string };
    assert.equal(resumed.id, id);
    assert.notEqual(resumed.state, 'terminated');
    assert.equal((await runFaas(server, ['session', 'stop', id])).code, 0);

    const unknown = await runFaas(server, ['session', 'status', 'sess-doesnotexist0']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: SESSION_NOT_FOUND: /);
  });

  test('start --follow streams the output while heartbeating and exits with the command\'s code', async () => {
    const run = await runFaas(server, ['session', 'start', '--max-duration', '1m', '--idle-timeout', '2s', '--heartbeat', '250ms', '--follow', '--', 'echo one; sleep 4; echo two; exit 7']);
    assert.equal(run.code, 7, run.stderr);
    assert.equal(run.stdout, 'one\ntwo\n', 'heartbeats kept it alive past the idle timeout');
    assert.match(run.stderr, /^faas: session sess-\S+ started \(execution exec-\S+\), deadline /m);
    assert.match(run.stderr, /^faas: session failed, deadline /m);
  });

  test('start --follow: ended by the hard cap, it prints the warning and the reason and exits 124', async () => {
    const run = await runFaas(server, ['session', 'start', '--max-duration', '1500ms', '--grace', '200ms', '--follow', '--', 'sleep', '60']);
    assert.equal(run.code, 124, run.stderr);
    assert.match(run.stderr, /^faas: session warning: max_duration; SIGTERM now, SIGKILL after 200ms$/m);
    assert.match(run.stderr, /^faas: session checkpoint snap-\S+ \(/m);
    assert.match(run.stderr, /^faas: session sess-\S+ terminated: max_duration$/m);
  });

  test('usage mistakes exit 2', async () => {
    const missing = await runFaas(server, ['session', 'start', '--', 'true']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--max-duration/);
    const bad = await runFaas(server, ['session', 'extend', 'sess-x', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected a duration/);
  });
});
