import assert from 'node:assert/strict';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { cookieValue, forwardHttp, withoutCookie } from './port-proxy.ts';

/**
 * forwardHttp between two plain loopback servers (no sandbox): the header rules, and how a
 * service that fails is told apart from one that answers.
 */
describe('forwardHttp', () => {
  let service: Server;
  let proxy: Server;
  let servicePort: number;
  let proxyUrl: string;
  let seen: IncomingMessage | undefined;
  const agent = new Agent({ keepAlive: true });

  before(async () => {
    service = createServer((req, res) => {
      seen = req;
      if (req.url === '/forge') {
        res.writeHead(502, { 'x-faas-error-code': 'PORT_UNREACHABLE', connection: 'close, x-hop', 'x-hop': '1', 'keep-alive': 'timeout=5' });
        res.end('the service says 502');
      } else if (req.url === '/hangup') {
        req.socket.destroy();
      } else {
        res.end('ok');
      }
    });
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    servicePort = (service.address() as AddressInfo).port;
    proxy = createServer((req, res) => {
      const fresh = () => new Promise<Socket>((resolve, reject) => {
        const socket = connect(servicePort, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      });
      forwardHttp(req, res, { agent, connect: fresh }, {
          instanceId: 'inst-1',
          port: servicePort,
          path: req.url!,
          dropHeaders: new Set(['authorization']),
          dropCookie: 'faas_port_token',
          forwardedPrefix: '/p/inst-1/8000',
          protocol: 'http',
          timeoutMs: 2000,
          extraResponseHeaders: [['Set-Cookie', 'faas_port_token=t; Path=/p/inst-1/8000/; HttpOnly']],
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  after(async () => {
    agent.destroy();
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
    await new Promise((r) => service.close(r));
  });

  function get(path: string, headers: Record<string, string>): Promise<{ res: IncomingMessage; body: string }> {
    return new Promise((resolve, reject) => {
      httpRequest(`${proxyUrl}${path}`, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ res, body }));
      })
        .on('error', reject)
        .end();
    });
  }

  it('drops hop-by-hop headers, the ones Connection lists, our credentials and client-sent X-Forwarded-*; sets its own', async () => {
    await get('/x?y=1', { connection: 'x-private', 'x-private': 'secret', 'keep-alive': 'timeout=1', authorization: 'Bearer k', 'x-forwarded-for': '6.6.6.6', cookie: 'a=1; faas_port_token=t; b=2', 'x-kept': 'yes' });
    const h = seen!.headers;
    assert.equal(seen!.url, '/x?y=1');
    assert.equal(h['x-private'], undefined);
    assert.equal(h['keep-alive'], undefined);
    assert.equal(h.authorization, undefined);
    assert.equal(h.cookie, 'a=1; b=2');
    assert.equal(h['x-kept'], 'yes');
    assert.equal(h.host, `127.0.0.1:${servicePort}`);
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-prefix'], '/p/inst-1/8000');
    assert.equal(h['x-forwarded-proto'], 'http');
  });

  it("removes a service's forged X-Faas-Error-Code and its hop-by-hop answer headers; adds the cookie", async () => {
    const { res, body } = await get('/forge', {});
    assert.equal(res.statusCode, 502);
    assert.equal(body, 'the service says 502');
    assert.equal(res.headers['x-faas-error-code'], undefined);
    assert.equal(res.headers['x-hop'], undefined);
    assert.deepEqual(res.headers['set-cookie'], ['faas_port_token=t; Path=/p/inst-1/8000/; HttpOnly']);
  });

  it('answers 502 UPSTREAM_ERROR, marked as the proxy\'s, when the service hangs up without answering', async () => {
    const { res, body } = await get('/hangup', {});
    assert.equal(res.statusCode, 502);
    assert.equal(res.headers['x-faas-error-code'], 'UPSTREAM_ERROR');
    assert.equal(JSON.parse(body).error.code, 'UPSTREAM_ERROR');
  });
});

describe('forwardHttp over a pooled connection the service closes as it is reused', () => {
  let service: TcpServer;
  let proxy: Server;
  let proxyUrl: string;
  let connections = 0;
  const agent = new Agent({ keepAlive: true });

  before(async () => {
    // Answers the first request of each connection and resets the connection on the second:
    // the keep-alive race, made deterministic.
    service = createTcpServer((socket) => {
      connections++;
      let requests = 0;
      socket.on('data', () => {
        if (++requests === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=60\r\n\r\nok');
        else socket.resetAndDestroy();
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    const port = (service.address() as AddressInfo).port;
    proxy = createServer((req, res) => {
      const fresh = () => new Promise<Socket>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      });
      forwardHttp(req, res, { agent, connect: fresh }, { instanceId: 'inst-1', port, path: req.url!, dropHeaders: new Set(), forwardedPrefix: '/', protocol: 'http', timeoutMs: 2000 });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  after(async () => {
    agent.destroy();
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
    await new Promise((r) => service.close(r));
  });

  it('sends a request without a body again on a fresh connection; a request with a body fails as UPSTREAM_ERROR', async () => {
    const first = await fetch(`${proxyUrl}/a`);
    assert.equal(await first.text(), 'ok');
    const second = await fetch(`${proxyUrl}/b`);
    assert.equal(second.status, 200, 'retried on a fresh connection');
    assert.equal(await second.text(), 'ok');
    assert.equal(connections, 2);
    // The fresh connection is not pooled; the first one was reset. Pool one again, then POST on it.
    assert.equal((await fetch(`${proxyUrl}/c`)).status, 200);
    const post = await fetch(`${proxyUrl}/d`, { method: 'POST', body: 'payload' });
    assert.equal(post.status, 502);
    assert.equal(post.headers.get('x-faas-error-code'), 'UPSTREAM_ERROR');
  });
});

describe('cookie helpers', () => {
  it('withoutCookie removes one cookie by exact name and keeps the rest in order', () => {
    assert.equal(withoutCookie('a=1; faas_port_token=x; b=2', 'faas_port_token'), 'a=1; b=2');
    assert.equal(withoutCookie('faas_port_token=x', 'faas_port_token'), '');
    assert.equal(withoutCookie('faas_port_token2=x;a=1', 'faas_port_token'), 'faas_port_token2=x; a=1');
  });

  it('cookieValue finds a cookie by exact name', () => {
    assert.equal(cookieValue('a=1; faas_port_token=abc=; b=2', 'faas_port_token'), 'abc=');
    assert.equal(cookieValue('xfaas_port_token=1', 'faas_port_token'), undefined);
    assert.equal(cookieValue(undefined, 'faas_port_token'), undefined);
  });
});
