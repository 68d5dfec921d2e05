import os from 'node:os';
import type { Config } from '../../config';
import { RoomRegistry, WorkerPool, resolveWorkerBinary } from '../../media';
import type { Logger } from '../core/logger';
import { projectRoot } from '../core/paths';

/**
 * The address browsers are told to send media to: the configured one, the
 * listen address when it is a specific one, else the machine's first
 * non-loopback IPv4 address (logged, so the operator can check it).
 */
export function announcedAddress(config: Pick<Config, 'mediaListenIp' | 'mediaAnnouncedAddress'>, logger: Logger): string | undefined {
  if (config.mediaAnnouncedAddress) return config.mediaAnnouncedAddress;
  if (config.mediaListenIp !== '0.0.0.0' && config.mediaListenIp !== '::') return undefined;
  const candidates = Object.values(os.networkInterfaces()).flat().filter((i) => i && i.family === 'IPv4' && !i.internal);
  const address = candidates[0]?.address ?? '127.0.0.1';
  logger.warn({ announcedAddress: address }, 'VCLERK_MEDIA_ANNOUNCED_ADDRESS is not set: announcing the first IPv4 address of this machine to browsers');
  return address;
}

/**
 * Starts the media workers and the call rooms on them. `mediaAddress` is
 * the address browsers are told (the announced one, else the listen address).
 */
export async function startMedia(config: Config, logger: Logger): Promise<{ pool: WorkerPool; rooms: RoomRegistry; mediaAddress: string }> {
  const mediaLogger = logger.child({ component: 'media' });
  const announced = announcedAddress(config, logger);
  const pool = await WorkerPool.create({
    workerBin: resolveWorkerBinary(config.mediasoupWorkerBin, projectRoot),
    workers: config.mediaWorkers,
    listenIp: config.mediaListenIp,
    announcedAddress: announced,
    basePort: config.mediaPort,
    rtcMinPort: config.mediaRtcPortMin,
    rtcMaxPort: config.mediaRtcPortMax,
    logLevel: config.mediaLogLevel,
    logger: mediaLogger,
  });
  return { pool, rooms: new RoomRegistry(pool, mediaLogger), mediaAddress: announced ?? config.mediaListenIp };
}
