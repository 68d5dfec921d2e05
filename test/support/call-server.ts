import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createApp } from '../../app/app';
import { callModules } from '../../app/call-modules';
import { sessionMiddleware } from '../../app/access/session';
import { CallHub } from '../../app/calls/hub';
import { createKnex, type Knex } from '../../app/db/connection';
import { NotifyBus } from '../../app/db/notify-bus';
import { startRecordings, type Recordings } from '../../app/recordings/setup';
import { WorkerPool } from '../../media';
import { NodeCluster } from '../../app/nodes/cluster';
import { NodeRegistry } from '../../app/nodes/registry';
import { startTestJobs } from './jobs';
import { silentLogger, testConfig, TEST_SECRET } from './context';
import { startTestPool } from './media-pool';
import type { TestDatabase } from './database';

export interface CallServer {
  url: string;
  hub: CallHub;
  pool: WorkerPool;
  /** With `recordings`: the job queue and live recorder, and the data directory they write to. */
  recordings?: Recordings;
  dataDir: string;
  /** With `node`: this server's entry in the node registry. */
  registry?: NodeRegistry;
  /** With `node`: placement, forwarding to the living nodes (read every heartbeat; `refresh()` reads now), failover. */
  cluster?: NodeCluster;
  /** The server's pool: the test database's, or with `bus` a pool of its own (a node of its own). */
  knex: Knex;
  /** With `bus`: the server's notify bus on its own pool, as a node of the appliance has. */
  bus?: NotifyBus;
  close(): Promise<void>;
}

/** A node among several on one database (issue 19): its name, the loopback address it listens on, its capacity. */
export interface TestNode {
  name: string;
  host?: string;
  capacity?: number;
  heartbeatSeconds?: number;
}

/**
 * The real appliance in this process: the app, a listening HTTP server,
 * the signalling hub and a real mediasoup worker pool on loopback.
 */
export async function startCallServer(
  db: TestDatabase,
  options: { graceMs?: number; workers?: number; silenceMs?: number; recordings?: boolean; env?: Record<string, string>; bus?: boolean; node?: TestNode } = {},
): Promise<CallServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-calls-'));
  const config = testConfig({ VCLERK_DATA_DIR: dataDir, VCLERK_RECORDING_MIN_FREE_MB: '1', ...options.env });
  const { pool, rooms } = await startTestPool({ workers: options.workers ?? 1, rtcMinPort: config.mediaRtcPortMin, rtcMaxPort: config.mediaRtcPortMax });
  // A node of its own: its own pool with a notify bus on it (call events cross between such servers through the database).
  const knex = options.bus ? createKnex(db.url, 5, silentLogger) : db.knex;
  const bus = options.bus ? new NotifyBus({ knex, logger: silentLogger }) : undefined;
  await bus?.start();
  const session = sessionMiddleware(knex, { secret: TEST_SECRET, idleMinutes: 30 });
  // A node takes back the recordings of gone nodes through the job queue.
  const jobs = options.recordings || options.node ? await startTestJobs(knex) : undefined;
  const recordings = jobs && options.recordings ? await startRecordings(config, knex, silentLogger, jobs) : undefined;
  let registry: NodeRegistry | undefined;
  const cluster = options.node && jobs
    ? new NodeCluster({ knex, jobs, logger: silentLogger, self: { name: options.node.name, id: () => registry?.self?.id, steady: () => registry?.steady ?? false }, heartbeatSeconds: options.node.heartbeatSeconds ?? 1, secret: TEST_SECRET })
    : undefined;
  const hub = new CallHub({ knex, logger: silentLogger, rooms, session, graceMs: options.graceMs ?? 2000, absoluteHours: 12, silenceMs: options.silenceMs, modules: callModules({ knex, recordings: recordings?.live }), ...(cluster ? { placement: cluster.placement } : {}) });
  const app = createApp({ config, db: knex, logger: silentLogger, sessionSecret: TEST_SECRET, session, hub });
  const server = http.createServer(app);
  hub.attach(server);
  const host = options.node?.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;
  if (options.node && cluster) {
    const { name, capacity = 100, heartbeatSeconds = 1 } = options.node;
    registry = new NodeRegistry({ knex, logger: silentLogger, identity: { name, url, mediaAddress: null, capacity, heartbeatSeconds }, version: 'test', load: () => ({ calls: rooms.size, workers: 1 }) });
    await registry.register();
    registry.start();
    await cluster.start(server);
  }
  return {
    url,
    hub,
    pool,
    recordings,
    dataDir,
    registry,
    cluster,
    knex,
    bus,
    async close() {
      await cluster?.stop();
      await registry?.stop();
      await hub.close();
      await jobs?.stop();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool.close();
      await bus?.close();
      if (knex !== db.knex) await knex.destroy();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
