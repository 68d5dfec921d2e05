import type { Knex } from 'knex';
import type { Config } from '../../config';
import { PortAllocator, resolveFfmpeg } from '../../media';
import { JobQueue } from '../jobs/queue';
import type { Logger } from '../logger';
import { parseRecordingKey } from './crypto';
import { finaliseRecording, reconcileRecordings } from './finalise';
import { FINALISE_QUEUE, RecordingLive } from './live';

export interface Recordings {
  live: RecordingLive;
  jobs: JobQueue;
  /** Stops taking jobs (running ones finish, up to the timeout). The live recorder stops with the signalling hub. */
  stop(): Promise<void>;
}

type RecordingConfig = Pick<Config, 'dataDir' | 'ffmpegPath' | 'recordingKey' | 'recordingMinFreeMb' | 'recordingPortMin' | 'recordingPortMax'>;

/**
 * Recording at start-up: the job queue (which also finishes recordings
 * interrupted by a crash or restart), the worker for final files, and the
 * live recorder the signalling hub uses.
 */
export async function startRecordings(config: RecordingConfig, knex: Knex, logger: Logger, options: { pollingIntervalSeconds?: number } = {}): Promise<Recordings> {
  const log = logger.child({ component: 'recordings' });
  const ffmpegPath = resolveFfmpeg(config.ffmpegPath);
  const key = config.recordingKey ? parseRecordingKey(config.recordingKey) : null;
  const jobs = new JobQueue(knex, log, { pollingIntervalSeconds: options.pollingIntervalSeconds });
  await jobs.start();
  await jobs.work<{ recordingId: string }>(FINALISE_QUEUE, finaliseRecording({ knex, logger: log, dataDir: config.dataDir, ffmpegPath, key }));
  const reconciled = await reconcileRecordings(knex, jobs);
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
  return { live, jobs, stop: () => jobs.stop() };
}
