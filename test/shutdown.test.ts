import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import express from 'express';
import pino from 'pino';
import { ConfigError } from '../config';
import { createShutdown, StopRegistry } from '../app/lifecycle/shutdown';
import { Boot } from '../app/start/boot';
import { silentLogger } from './support/context';
import { eventually } from './support/wait';

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

/** A process for the boot: signals are events, the exit code and stderr are recorded. */
function fakeProcess() {
  const proc = Object.assign(new EventEmitter(), { stderr: { text: '', write: (t: string) => { proc.stderr.text += t; } }, exit: (code: number) => { onExit(code); } });
  let onExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => { onExit = resolve; });
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { proc, exited, lines, logger };
}

describe('start phases and their stops', () => {
  it('stops what started in reverse order: what started after the server listened before the drain, the rest after it', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const order: string[] = [];
    // Each step notes whether the server still accepted connections when it ran.
    const step = (name: string) => ({ name, close: async () => { order.push(`${name}${server.listening ? ' (accepting)' : ''}`); } });
    const stops = new StopRegistry();
    stops.add(step('database'));
    stops.add(step('job queue'));
    stops.serving(server);
    stops.add(step('signalling'));
    stops.add(step('webhooks'));
    const exit = new Promise<number>((resolve) => {
      const { shutdown } = createShutdown({ server, logger: silentLogger, timeoutMs: 1000, ...stops.plan(), exit: resolve });
      void shutdown('SIGTERM');
    });
    assert.equal(await exit, 0);
    assert.deepEqual(order, ['webhooks', 'signalling', 'job queue', 'database']);
  });

  it('a failing phase is logged by name, what had started stops in reverse order, and the process exits 1', async () => {
    const { proc, exited, lines, logger } = fakeProcess();
    const boot = new Boot(proc);
    const stopped: string[] = [];
    const ran: string[] = [];
    void (async () => {
      await boot.phase('config', () => boot.useLogger(logger));
      await boot.phase('database', () => boot.onStop('database', async () => { stopped.push('database'); }));
      await boot.phase('media', () => boot.onStop('media workers', async () => { stopped.push('media workers'); }));
      await boot.phase('jobs', async () => { throw new Error('pg-boss would not start'); });
      ran.push('http');
    })();
    assert.equal(await exited, 1);
    assert.deepEqual(stopped, ['media workers', 'database']);
    assert.deepEqual(ran, [], 'no phase runs after the failed one');
    const fatal = lines.find((l) => l.level === 60);
    assert.equal(fatal?.phase, 'jobs');
    assert.match(String(fatal?.msg), /could not start \(phase: jobs\)/);
  });

  it('a bad configuration exits 78 with the reason on stderr', async () => {
    const { proc, exited } = fakeProcess();
    const boot = new Boot(proc);
    void boot.phase('config', () => { throw new ConfigError([{ source: 'VCLERK_PORT', key: 'port', reason: 'must be a whole number' }]); });
    assert.equal(await exited, 78);
    assert.match(proc.stderr.text, /Invalid configuration/);
  });

  it('a phase that takes long is named in a warning while it runs, and no more once it is done', async () => {
    const { proc, lines, logger } = fakeProcess();
    const boot = new Boot(proc, 20);
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => { release = resolve; });
    await boot.phase('config', () => boot.useLogger(logger));
    const slow = boot.phase('database', () => released);
    const warnings = () => lines.filter((l) => l.level === 40 && l.phase === 'database');
    await eventually(async () => (warnings().length >= 2 ? true : undefined)); // warned again at the next multiple
    assert.match(String(warnings()[0]!.msg), /start phase database still running after \d+ s/);
    release();
    await slow;
    const after = warnings().length;
    await boot.phase('media', () => new Promise((resolve) => setTimeout(resolve, 100)));
    assert.equal(warnings().length, after, 'the finished phase is not warned about again');
    assert.ok(lines.some((l) => l.level === 40 && l.phase === 'media'), 'the next slow phase is named instead');
  });

  it('keeps one listener per signal from the logger to the exit, never swapped (no moment without one)', async () => {
    const { proc, exited, logger } = fakeProcess();
    // Node closes a signal's handle when its last listener goes, losing a signal caught but not yet handled.
    const counts: string[] = [];
    proc.on('removeListener', (event: string) => { if (event === 'SIGTERM' || event === 'SIGINT') counts.push(`${event} ${proc.listenerCount(event)}`); });
    const boot = new Boot(proc);
    const server = http.createServer();
    await boot.phase('config', () => boot.useLogger(logger));
    const listeners = { SIGTERM: proc.listeners('SIGTERM'), SIGINT: proc.listeners('SIGINT') };
    await boot.phase('http', async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      boot.serving(server);
    });
    boot.running(1000);
    assert.deepEqual(counts, [], 'no signal listener was removed');
    assert.deepEqual({ SIGTERM: proc.listeners('SIGTERM'), SIGINT: proc.listeners('SIGINT') }, listeners, 'the same listeners as during the start-up');
    // A signal now is the graceful shutdown.
    proc.emit('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('a second signal during an interrupted start-up exits at once (1); no phase starts after the first', async () => {
    const { proc, exited, logger } = fakeProcess();
    const boot = new Boot(proc);
    let release: () => void = () => undefined;
    await boot.phase('config', () => boot.useLogger(logger));
    await boot.phase('database', () => boot.onStop('database', () => new Promise<void>((resolve) => { release = resolve; })));
    proc.emit('SIGTERM');
    let started = false;
    void boot.phase('media', () => { started = true; });
    proc.emit('SIGINT');
    assert.equal(await exited, 1);
    assert.equal(started, false, 'the next phase did not start');
    release();
  });

  it('a signal during start-up ends it (exit 1), stopping what had started', async () => {
    const { proc, exited, logger } = fakeProcess();
    const boot = new Boot(proc);
    const stopped: string[] = [];
    await boot.phase('config', () => boot.useLogger(logger));
    await boot.phase('database', () => boot.onStop('database', async () => { stopped.push('database'); }));
    proc.emit('SIGTERM');
    assert.equal(await exited, 1);
    assert.deepEqual(stopped, ['database']);
  });
});
