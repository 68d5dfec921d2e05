import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createApp } from '../../app/app';
import { sessionMiddleware } from '../../app/auth/session';
import { CallHub } from '../../app/calls/hub';
import { RoomRegistry, WorkerPool, resolveWorkerBinary } from '../../media';
import { freePort } from './process';
import { silentLogger, testConfig, TEST_SECRET } from './context';
import type { TestDatabase } from './database';

export interface CallServer {
  url: string;
  hub: CallHub;
  pool: WorkerPool;
  close(): Promise<void>;
}

/**
 * The real appliance in this process: the app, a listening HTTP server,
 * the signalling hub and a real mediasoup worker pool on loopback.
 */
export async function startCallServer(db: TestDatabase, options: { graceMs?: number; workers?: number; silenceMs?: number } = {}): Promise<CallServer> {
  const config = testConfig();
  const pool = await WorkerPool.create({
    workerBin: resolveWorkerBinary(process.env.MEDIASOUP_WORKER_BIN, path.join(__dirname, '..', '..')),
    workers: options.workers ?? 1,
    listenIp: '127.0.0.1',
    basePort: await freePort(),
    logLevel: 'warn',
    logger: silentLogger,
  });
  const rooms = new RoomRegistry(pool, silentLogger);
  const session = sessionMiddleware(db.knex, { secret: TEST_SECRET, idleMinutes: 30 });
  const hub = new CallHub({ knex: db.knex, logger: silentLogger, rooms, session, graceMs: options.graceMs ?? 2000, absoluteHours: 12, silenceMs: options.silenceMs });
  const app = createApp({ config, db: db.knex, logger: silentLogger, sessionSecret: TEST_SECRET, session, hub });
  const server = http.createServer(app);
  hub.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hub,
    pool,
    async close() {
      await hub.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool.close();
    },
  };
}
