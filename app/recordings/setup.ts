import type { Knex } from 'knex';
import type { Config } from '../../config';
import { PortAllocator, resolveFfmpeg } from '../../media';
import type { JobQueue } from '../jobs/queue';
import type { Logger } from '../core/logger';
import { parseRecordingKey } from './crypto';
import { finaliseRecording, reconcileRecordings } from './finalise';
import { FINALISE_QUEUE, RecordingLive } from './live';

/** The live recorder the signalling hub uses; it stops with the hub, the finishing worker with the job queue. */
export interface Recordings {
  live: RecordingLive;
}

type RecordingConfig = Pick<Config, 'dataDir' | 'ffmpegPath' | 'recordingKey' | 'recordingMinFreeMb' | 'recordingPortMin' | 'recordingPortMax'>;

/**
 * Recording at start-up, on the appliance's job queue (started): the worker
 * for final files (which also finishes recordings interrupted by a crash or
 * restart), and the live recorder the signalling hub uses.
 */
/** `scope`: with several nodes, which calls' recordings this node reconciles (app/nodes/failover.ts startScope). */
export async function startRecordings(config: RecordingConfig, knex: Knex, logger: Logger, jobs: JobQueue, scope?: { nodeIds: string[]; unplaced: boolean }): Promise<Recordings> {
  const log = logger.child({ component: 'recordings' });
  const ffmpegPath = resolveFfmpeg(config.ffmpegPath);
  const key = config.recordingKey ? parseRecordingKey(config.recordingKey) : null;
  await jobs.work<{ recordingId: string }>(FINALISE_QUEUE, finaliseRecording({ knex, logger: log, dataDir: config.dataDir, ffmpegPath, key }), { log });
  const reconciled = await reconcileRecordings(knex, jobs, scope);
  if (reconciled.interrupted || reconciled.queued) log.info(reconciled, 'recordings reconciled after the restart');
  const live = new RecordingLive({
    knex,
    logger: log,
    dataDir: config.dataDir,
    ffmpegPath,
    minFreeMb: config.recordingMinFreeMb,
    ports: new PortAllocator(config.recordingPortMin, config.recordingPortMax),
    jobs,
  });
  log.info({ ffmpeg: ffmpegPath, encrypted: key !== null }, 'recording ready');
  return { live };
}
