import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { parseHttpProbe, parseLogProbe, parseTcpProbe, probeLabel } from './probe-args.ts';

test('--http takes [HOST]:PORT[/PATH], PORT[/PATH] and an http:// prefix', () => {
  assert.deepEqual(parseHttpProbe(':8000/health'), { type: 'http', port: 8000, path: '/health' });
  assert.deepEqual(parseHttpProbe('8000'), { type: 'http', port: 8000 });
  assert.deepEqual(parseHttpProbe('127.0.0.2:80/a?b=c'), { type: 'http', port: 80, host: '127.0.0.2', path: '/a?b=c' });
  assert.deepEqual(parseHttpProbe('[::1]:8080/'), { type: 'http', port: 8080, host: '::1', path: '/' });
  assert.deepEqual(parseHttpProbe('http://localhost:3000/ready'), { type: 'http', port: 3000, host: 'localhost', path: '/ready' });
  for (const bad of ['', ':', ':0', ':70000', 'host', ':80 /x', 'https://x:1/']) assert.throws(() => parseHttpProbe(bad), InvalidArgumentError, bad);
});

test('--tcp takes [HOST:]PORT', () => {
  assert.deepEqual(parseTcpProbe('5432'), { type: 'tcp', port: 5432 });
  assert.deepEqual(parseTcpProbe(':5432'), { type: 'tcp', port: 5432 });
  assert.deepEqual(parseTcpProbe('127.0.0.1:6379'), { type: 'tcp', port: 6379, host: '127.0.0.1' });
  for (const bad of ['x', '0', '65536', '1/2']) assert.throws(() => parseTcpProbe(bad), InvalidArgumentError, bad);
});

test('--log splits EXEC_ID:REGEX at the first colon', () => {
  assert.deepEqual(parseLogProbe('exec-1:listening on :\\d+'), { type: 'log', executionId: 'exec-1', pattern: 'listening on :\\d+' });
  for (const bad of ['exec-1', ':x', 'exec-1:']) assert.throws(() => parseLogProbe(bad), InvalidArgumentError, bad);
});

test('probe labels are short and say what is probed', () => {
  assert.equal(probeLabel(parseHttpProbe(':8000/health')), 'http :8000/health');
  assert.equal(probeLabel(parseTcpProbe('5432')), 'tcp 5432');
  assert.equal(probeLabel({ type: 'command', code: 'test -f /ready' }), 'cmd "test -f /ready"');
});
