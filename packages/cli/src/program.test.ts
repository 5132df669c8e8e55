import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import type { Command } from 'commander';
import { readLocalApiKey, type GlobalOptions } from './cli-context.ts';
import { buildProgram, runCli } from './program.ts';

interface Spied {
  program: Command;
  calls: unknown[][];
  stderr: string[];
}

/** The real command tree with one command's action replaced by a recorder, and output captured. */
function spyOn(...path: string[]): Spied {
  const program = buildProgram();
  const stderr: string[] = [];
  const quiet = (command: Command): void => {
    command.configureOutput({ writeErr: (text) => stderr.push(text), writeOut: () => undefined });
    command.commands.forEach(quiet);
  };
  quiet(program);
  let target = program;
  for (const name of path) {
    const next = target.commands.find((command) => command.name() === name);
    assert.ok(next, `no command ${name}`);
    target = next;
  }
  const calls: unknown[][] = [];
  target.action((...args: unknown[]) => {
    calls.push(args);
  });
  return { program, calls, stderr };
}

function argv(...args: string[]): string[] {
  return ['node', 'faas', ...args];
}

const savedEnv = { url: process.env.FAAS_URL, key: process.env.FAAS_API_KEY };

afterEach(() => {
  for (const [name, value] of [['FAAS_URL', savedEnv.url], ['FAAS_API_KEY', savedEnv.key]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('faas exec argument parsing', () => {
  test('passes the words after -- unparsed, with the options before it', async () => {
    const { program, calls } = spyOn('exec');
    assert.equal(await runCli(argv('exec', '-e', 'A=1', '-e', 'B=x=y', '--timeout', '500', '--memory', '64', '--cpus', '0.5', '--', 'sh', '-c', 'echo $A; ls -e'), program), 0);
    const [words, options] = calls[0] ?? [];
    assert.deepEqual(words, ['sh', '-c', 'echo $A; ls -e']);
    assert.deepEqual(options, { envVar: { A: '1', B: 'x=y' }, timeout: 500, memory: 64, cpus: 0.5 });
  });

  test('options after -- belong to the command, not to faas', async () => {
    const { program, calls } = spyOn('exec');
    await runCli(argv('exec', '--', 'ls', '-e', 'X', '--timeout', '1'), program);
    assert.deepEqual(calls[0]?.[0], ['ls', '-e', 'X', '--timeout', '1']);
    assert.deepEqual(calls[0]?.[1], {});
  });

  test('a bad -e value is a usage error (exit 2) that names the option', async () => {
    const { program, calls, stderr } = spyOn('exec');
    assert.equal(await runCli(argv('exec', '-e', 'NOEQUALS', '--', 'true'), program), 2);
    assert.equal(calls.length, 0);
    assert.match(stderr.join(''), /env-var.*NOEQUALS/);
  });

  test('no command after -- is a usage error', async () => {
    const { program } = spyOn('exec');
    assert.equal(await runCli(argv('exec'), program), 2);
  });

  test('an unknown option is a usage error', async () => {
    const { program } = spyOn('exec');
    assert.equal(await runCli(argv('exec', '--nope', '--', 'true'), program), 2);
  });

  test('--help exits 0', async () => {
    const { program } = spyOn('exec');
    assert.equal(await runCli(argv('exec', '--help'), program), 0);
  });
});

describe('faas instances argument parsing', () => {
  test('instances exec takes the instance id, then the words after --', async () => {
    const { program, calls } = spyOn('instances', 'exec');
    await runCli(argv('instances', 'exec', 'inst-1', '--workdir', '/tmp', '-e', 'K=V', '--', 'echo a b'), program);
    assert.equal(calls[0]?.[0], 'inst-1');
    assert.deepEqual(calls[0]?.[1], ['echo a b']);
    assert.deepEqual(calls[0]?.[2], { workdir: '/tmp', envVar: { K: 'V' } });
  });

  test('instances create reads --env, -e and the limits', async () => {
    const { program, calls } = spyOn('instances', 'create');
    await runCli(argv('instances', 'create', '--env', 'host', '-e', 'A=1', '--memory', '256', '--pids', '64', '--json'), program);
    assert.deepEqual(calls[0]?.[0], { env: 'host', envVar: { A: '1' }, memory: 256, pids: 64, json: true });
  });

  test('instances rm takes several ids', async () => {
    const { program, calls } = spyOn('instances', 'rm');
    await runCli(argv('instances', 'rm', 'a', 'b'), program);
    assert.deepEqual(calls[0]?.[0], ['a', 'b']);
  });

  test('logs reads --follow and --after', async () => {
    const { program, calls } = spyOn('logs');
    await runCli(argv('logs', 'exec-1', '--follow', '--after', '7'), program);
    assert.equal(calls[0]?.[0], 'exec-1');
    assert.deepEqual(calls[0]?.[1], { follow: true, after: 7 });
  });
});

describe('faas snapshot and faas branch argument parsing', () => {
  test('snapshot create reads repeatable --meta KEY=VALUE, --live and --json', async () => {
    const { program, calls } = spyOn('snapshot', 'create');
    assert.equal(await runCli(argv('snapshot', 'create', 'inst-1', '--meta', 'step=one', '--meta', 'note=a=b', '--meta', 'empty=', '--live', '--json'), program), 0);
    assert.equal(calls[0]?.[0], 'inst-1');
    assert.deepEqual(calls[0]?.[1], { meta: { step: 'one', note: 'a=b', empty: '' }, live: true, json: true });
  });

  test('a --meta without a key is a usage error', async () => {
    const { program, calls, stderr } = spyOn('snapshot', 'create');
    assert.equal(await runCli(argv('snapshot', 'create', 'inst-1', '--meta', '=v'), program), 2);
    assert.equal(calls.length, 0);
    assert.match(stderr.join(''), /meta.*=v/);
  });

  test('snapshot create: --instance and --execution together are a usage error', async () => {
    const { program, calls } = spyOn('snapshot', 'create');
    assert.equal(await runCli(argv('snapshot', 'create', 'x-1', '--instance', '--execution'), program), 2);
    assert.equal(calls.length, 0);
  });

  test('snapshot ls reads --parent, --instance and --limit', async () => {
    const { program, calls } = spyOn('snapshot', 'ls');
    await runCli(argv('snapshot', 'ls', '--parent', 'none', '--instance', 'inst-1', '--limit', '5'), program);
    assert.deepEqual(calls[0]?.[0], { parent: 'none', instance: 'inst-1', limit: 5 });
  });

  test('snapshot diff takes two refs; rm takes several with --cascade; gc reads --grace-ms 0', async () => {
    const diff = spyOn('snapshot', 'diff');
    await runCli(argv('snapshot', 'diff', 'snap-a', 'snap-b'), diff.program);
    assert.deepEqual(diff.calls[0]?.slice(0, 2), ['snap-a', 'snap-b']);
    assert.equal(await runCli(argv('snapshot', 'diff', 'snap-a'), spyOn('snapshot', 'diff').program), 2);
    const rm = spyOn('snapshot', 'rm');
    await runCli(argv('snapshot', 'rm', 'snap-a', 'snap-b', '--cascade'), rm.program);
    assert.deepEqual(rm.calls[0]?.slice(0, 2), [['snap-a', 'snap-b'], { cascade: true }]);
    const gc = spyOn('snapshot', 'gc');
    await runCli(argv('snapshot', 'gc', '--grace-ms', '0'), gc.program);
    assert.deepEqual(gc.calls[0]?.[0], { graceMs: 0 });
  });

  test('snapshot restore reads --id, --meta and limits', async () => {
    const { program, calls } = spyOn('snapshot', 'restore');
    await runCli(argv('snapshot', 'restore', 'snap-a', '--id', 'mine', '--memory', '64'), program);
    assert.equal(calls[0]?.[0], 'snap-a');
    assert.deepEqual(calls[0]?.[1], { id: 'mine', memory: 64 });
  });

  test('branch reads -n (default 1) and rejects 0', async () => {
    const one = spyOn('branch');
    await runCli(argv('branch', 'snap-a'), one.program);
    assert.deepEqual(one.calls[0]?.slice(0, 2), ['snap-a', { count: 1 }]);
    const three = spyOn('branch');
    await runCli(argv('branch', 'snap-a', '-n', '3', '--json'), three.program);
    assert.deepEqual(three.calls[0]?.[1], { count: 3, json: true });
    assert.equal(await runCli(argv('branch', 'snap-a', '-n', '0'), spyOn('branch').program), 2);
  });
});

describe('serve', () => {
  test('--runtime takes bwrap or vm and refuses anything else (exit 2, naming the choices)', async () => {
    const vm = spyOn('serve');
    await runCli(argv('serve', '--runtime', 'vm'), vm.program);
    assert.equal((vm.calls[0]?.[0] as { runtime?: string }).runtime, 'vm');
    const bad = spyOn('serve');
    assert.equal(await runCli(argv('serve', '--runtime', 'firecracker'), bad.program), 2);
    assert.match(bad.stderr.join(''), /expected "bwrap" or "vm", got "firecracker"/);
  });
});

describe('global options', () => {
  test('--url and --api-key reach every command', async () => {
    const { program, calls } = spyOn('instances', 'ls');
    await runCli(argv('--url', 'http://h:1', '--api-key', 'k', 'instances', 'ls'), program);
    const command = calls[0]?.at(-1) as Command;
    assert.deepEqual(command.optsWithGlobals<GlobalOptions>(), { url: 'http://h:1', apiKey: 'k' });
  });

  test('FAAS_URL and FAAS_API_KEY are the defaults of --url and --api-key', async () => {
    process.env.FAAS_URL = 'http://env:2';
    process.env.FAAS_API_KEY = 'env-key';
    const { program, calls } = spyOn('instances', 'ls');
    await runCli(argv('instances', 'ls'), program);
    const command = calls[0]?.at(-1) as Command;
    assert.deepEqual(command.optsWithGlobals<GlobalOptions>(), { url: 'http://env:2', apiKey: 'env-key' });
  });
});

describe('readLocalApiKey', () => {
  test('reads and trims the key file of a local server', () => {
    const dir = mkdtempSync(join(tmpdir(), 'faas-cli-'));
    try {
      writeFileSync(join(dir, 'api-key'), 'faas_secret\n');
      assert.equal(readLocalApiKey(join(dir, 'api-key')), 'faas_secret');
      assert.equal(readLocalApiKey(join(dir, 'missing')), undefined);
      writeFileSync(join(dir, 'empty'), '\n');
      assert.equal(readLocalApiKey(join(dir, 'empty')), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
