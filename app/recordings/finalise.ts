import fs from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import { composeRecording, MediaError, type RecordingTrack } from '../../media';
import type { Job, JobQueue } from '../jobs/queue';
import type { Logger } from '../core/logger';
import { FINALISE_QUEUE } from './live';
import { RecordingStore } from './service';
import { tryHoldLock } from '../db/session-lock';
import { DiskFullError, finaliseFile, freeBytes, recordingDir } from './storage';

export interface FinaliseDeps {
  knex: Knex;
  logger: Logger;
  dataDir: string;
  ffmpegPath: string;
  /** The encryption key at rest, or null for plain files. */
  key: Buffer | null;
}

/**
 * The background job that makes a stopped recording's final file: the
 * participants' raw tracks composed into one MP4 (both side by side, the
 * audio mixed), hashed (SHA-256 of the plaintext, kept in the database and
 * the audit trail), encrypted when a key is configured. Progress shows in
 * the recordings list. A recording whose tracks hold nothing usable is
 * marked failed. Without disk space for the final file, the recording
 * stays `processing` with its raw tracks and the job is tried again. The raw tracks (plaintext, 0600) are removed once the
 * final file exists, and also when they hold nothing usable; only when
 * composing fails with media in them are they kept, for an operator to
 * recover, until retention removes the recording with its directory.
 */
export function finaliseRecording(deps: FinaliseDeps): (job: Job<{ recordingId: string }>) => Promise<void> {
  const store = new RecordingStore(deps.knex);
  return async (job) => {
    // One at a time per recording across every node and worker: the job may be queued more than
    // once (each node's start, the live recorder, a lost node's sweep), and two composing at once
    // would write the same file. The one that finds it taken leaves it to the holder; a holder that
    // dies lets go with its session, and its job is retried by the queue.
    const unlock = await tryHoldLock(deps.knex, `vclerk.recording-finalise:${job.data.recordingId}`);
    if (!unlock) {
      deps.logger.info({ recordingId: job.data.recordingId }, 'the recording\'s final file is being made elsewhere');
      return;
    }
    try {
      await finaliseHeld(deps, store, job.data.recordingId);
    } finally {
      await unlock();
    }
  };
}

/** Makes the final file of a recording still `processing`, under its lock. */
async function finaliseHeld(deps: FinaliseDeps, store: RecordingStore, recordingId: string): Promise<void> {
  const recording = await store.get(recordingId);
  if (!recording || recording.status !== 'processing') return;
  const log = deps.logger.child({ recordingId: recording.id });
  const dir = recordingDir(deps.dataDir, recording.organisationId, recording.id);
  const tracks: RecordingTrack[] = (await store.tracks(recording.id)).map((t) => ({
    role: t.role, file: path.join(dir, t.fileName), startedAt: t.startedAtMs, endedAt: t.endedAtMs, kinds: t.kinds, exitCode: t.exitCode, partial: t.partial,
  }));
  const composed = path.join(dir, 'composed.tmp.mp4');
  let lastProgress = -1;
  const started = Date.now();
  try {
    const { durationMs } = await composeRecording(tracks, composed, {
      ffmpegPath: deps.ffmpegPath,
      log,
      onProgress: (fraction) => {
        const percent = Math.floor(fraction * 95);
        if (percent < lastProgress + 5) return;
        lastProgress = percent;
        void store.setProgress(recording.id, percent).catch(() => undefined);
      },
    });
    // ffmpeg may end with 0 although its last writes (the MP4's index at the end) failed for want
    // of space: a disk that is full now means the file is not to be trusted.
    if (await freeBytes(dir).then((free) => free < MIN_FREE_BYTES, () => false)) throw new Error('ENOSPC: the disk filled up while the final file was written');
    const file = await finaliseFile(composed, dir, deps.key);
    await store.finalised(recording.id, { fileName: path.basename(file.path), size: file.size, sha256: file.sha256, encrypted: file.encrypted, durationMs });
    await removeTracks(dir);
    log.info({ durationMs, tookMs: Date.now() - started, size: file.size, encrypted: file.encrypted }, 'recording finalised');
  } catch (err) {
    await fs.rm(composed, { force: true });
    if (await outOfSpace(err, dir)) {
      // Nothing is wrong with the recording: it stays `processing` with its raw tracks, and the job is tried again
      // (the queue's retries; every start queues it anew) until space is freed.
      log.warn({ err, dir: path.join(dir, 'tracks') }, 'no disk space to make the recording\'s final file: the raw tracks are kept and it is tried again');
      throw err;
    }
    log.error({ err }, 'could not make the recording\'s final file');
    await store.failed(recording.id, err instanceof Error ? err.message : String(err));
    if (err instanceof MediaError && err.code === 'nothing_to_compose') await removeTracks(dir);
    else log.warn({ dir: path.join(dir, 'tracks') }, 'the raw tracks are kept (plaintext, readable by VClerk only) until retention removes the recording');
  }
}

/** Whether making the final file failed for want of disk space (ENOSPC anywhere in the error, or less than 1 MiB free now). */
async function outOfSpace(err: unknown, dir: string): Promise<boolean> {
  if (err instanceof DiskFullError) return true;
  let text = '';
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) text += ` ${(e as Error).message ?? ''} ${(e as { code?: string }).code ?? ''}`;
  if (/No space left on device|ENOSPC/.test(text)) return true;
  return freeBytes(dir).then((free) => free < MIN_FREE_BYTES, () => false);
}

const MIN_FREE_BYTES = 1024 * 1024;

/** Removes a recording's raw tracks (and SDP files left by a crash). */
async function removeTracks(dir: string): Promise<void> {
  await fs.rm(path.join(dir, 'tracks'), { recursive: true, force: true });
}

/**
 * After a (re)start: recordings still marked as running were cut off by a
 * crash or restart; they are stopped as partial. Every stopped recording
 * without a final file gets its job (again: one per recording). With
 * several nodes (`scope`): only the recordings of calls this node held (or
 * no node) and of nodes that are gone; a living node's are its own.
 */
export async function reconcileRecordings(knex: Knex, jobs: JobQueue, scope?: { nodeIds: string[]; unplaced: boolean }): Promise<{ interrupted: number; queued: number }> {
  const store = new RecordingStore(knex);
  const running = scope ? await store.runningWithin(scope) : await store.withStatus('recording');
  for (const recording of running) await store.stopped(recording.id, 'restart', true);
  const processing = await store.withStatus('processing');
  for (const recording of processing) await jobs.send(FINALISE_QUEUE, { recordingId: recording.id }, { singletonKey: recording.id });
  return { interrupted: running.length, queued: processing.length };
}

/**
 * The running recordings of nodes that are gone: stopped as partial
 * (`node_lost`: kept, playable up to the loss, from the tracks in the
 * shared data directory) and queued for their final file. Safe when several
 * nodes sweep at once: a recording is stopped once, and its job is one.
 */
export async function interruptLostRecordings(knex: Knex, jobs: JobQueue, nodeIds: string[]): Promise<number> {
  if (nodeIds.length === 0) return 0;
  const store = new RecordingStore(knex);
  let stopped = 0;
  for (const recording of await store.runningWithin({ nodeIds, unplaced: false })) {
    if (!(await store.stopped(recording.id, 'node_lost', true))) continue;
    await jobs.send(FINALISE_QUEUE, { recordingId: recording.id }, { singletonKey: recording.id });
    stopped++;
  }
  return stopped;
}
