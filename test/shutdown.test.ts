import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createShutdown } from '../app/lifecycle/shutdown';
import { silentLogger } from './support/context';

/** A real HTTP server with one slow route, and a shutdown whose exit is recorded. */
async function slowServer(timeoutMs: number) {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => { release = resolve; });
  const app = express();
  app.get('/slow', async (_req, res) => {
    await released;
    res.send('finished');
  });
  app.get('/fast', (_req, res) => { res.send('fast'); });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const exits: number[] = [];
  const closed: string[] = [];
  let onExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => { onExit = resolve; });
  const { shutdown } = createShutdown({
    server,
    logger: silentLogger,
    timeoutMs,
    closers: [
      { name: 'pool', close: async () => { closed.push('pool'); } },
      { name: 'database', close: async () => { closed.push('database'); } },
    ],
    exit: (code) => { exits.push(code); onExit(code); },
  });
  const result = { server, port, release, exits, closed, exited, shutdown };
  return result;
}

function get(port: number, path: string, agent?: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('graceful shutdown', () => {
  it('stops accepting, lets running requests finish, closes the pools in order, exits 0', async () => {
    const s = await slowServer(5000);
    const agent = new http.Agent({ keepAlive: true });
    await get(s.port, '/fast', agent); // leaves an idle keep-alive connection behind
    const running = get(s.port, '/slow');
    await new Promise((r) => setTimeout(r, 50)); // let the request reach the handler
    void s.shutdown('SIGTERM');
    await assert.rejects(get(s.port, '/fast'), /ECONNREFUSED/);
    assert.deepEqual(s.exits, [], 'does not exit while a request runs');
    s.release();
    assert.deepEqual(await running, { status: 200, body: 'finished' });
    assert.equal(await s.exited, 0);
    assert.deepEqual(s.closed, ['pool', 'database']);
    agent.destroy();
  });

  it('a second signal exits at once with code 1', async () => {
    const s = await slowServer(5000);
    const running = get(s.port, '/slow').catch(() => 'cut');
    await new Promise((r) => setTimeout(r, 50));
    void s.shutdown('SIGTERM');
    void s.shutdown('SIGINT');
    assert.equal(await s.exited, 1);
    assert.deepEqual(s.closed, []);
    s.release();
    s.server.closeAllConnections();
    await running;
  });

  it('cuts requests that outlast the timeout, then still closes the pools', async () => {
    const s = await slowServer(100);
    const running = get(s.port, '/slow').then(() => 'finished', () => 'cut');
    await new Promise((r) => setTimeout(r, 50));
    void s.shutdown('SIGTERM');
    assert.equal(await s.exited, 0);
    assert.equal(await running, 'cut');
    assert.deepEqual(s.closed, ['pool', 'database']);
    s.release();
  });
});
