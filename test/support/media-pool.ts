import path from 'node:path';
import { RoomRegistry, WorkerPool, resolveWorkerBinary } from '../../media';
import { silentLogger } from './context';
import { freePortBlock } from './process';

/**
 * A real mediasoup worker pool for a test, on 127.0.0.1 (the worker built by
 * `npm run setup`, or MEDIASOUP_WORKER_BIN), with its room registry. The
 * caller closes it (`rooms.closeAll()`, `pool.close()`).
 */
export async function startTestPool(options: { workers?: number; rtcMinPort?: number; rtcMaxPort?: number } = {}): Promise<{ pool: WorkerPool; rooms: RoomRegistry }> {
  const workers = options.workers ?? 1;
  const pool = await WorkerPool.create({
    workerBin: resolveWorkerBinary(process.env.MEDIASOUP_WORKER_BIN, path.join(__dirname, '..', '..')),
    workers,
    listenIp: '127.0.0.1',
    basePort: await freePortBlock(workers),
    ...(options.rtcMinPort !== undefined ? { rtcMinPort: options.rtcMinPort, rtcMaxPort: options.rtcMaxPort } : {}),
    logLevel: 'warn',
    logger: silentLogger,
  });
  return { pool, rooms: new RoomRegistry(pool, silentLogger) };
}
