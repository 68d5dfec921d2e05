import fs from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import { composeRecording, MediaError, type RecordingTrack } from '../../media';
import type { Job, JobQueue } from '../jobs/queue';
import type { Logger } from '../core/logger';
import { FINALISE_QUEUE } from './live';
import { RecordingStore } from './service';
import { finaliseFile, recordingDir } from './storage';

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
 * marked failed. The raw tracks (plaintext, 0600) are removed once the
 * final file exists, and also when they hold nothing usable; only when
 * composing fails with media in them are they kept, for an operator to
 * recover, until retention removes the recording with its directory.
 */
export function finaliseRecording(deps: FinaliseDeps): (job: Job<{ recordingId: string }>) => Promise<void> {
  const store = new RecordingStore(deps.knex);
  return async (job) => {
    const recording = await store.get(job.data.recordingId);
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
      const file = await finaliseFile(composed, dir, deps.key);
      await store.finalised(recording.id, { fileName: path.basename(file.path), size: file.size, sha256: file.sha256, encrypted: file.encrypted, durationMs });
      await removeTracks(dir);
      log.info({ durationMs, tookMs: Date.now() - started, size: file.size, encrypted: file.encrypted }, 'recording finalised');
    } catch (err) {
      log.error({ err }, 'could not make the recording\'s final file');
      await fs.rm(composed, { force: true });
      await store.failed(recording.id, err instanceof Error ? err.message : String(err));
      if (err instanceof MediaError && err.code === 'nothing_to_compose') await removeTracks(dir);
      else log.warn({ dir: path.join(dir, 'tracks') }, 'the raw tracks are kept (plaintext, readable by VClerk only) until retention removes the recording');
    }
  };
}

/** Removes a recording's raw tracks (and SDP files left by a crash). */
async function removeTracks(dir: string): Promise<void> {
  await fs.rm(path.join(dir, 'tracks'), { recursive: true, force: true });
}

/**
 * After a (re)start: recordings still marked as running were cut off by a
 * crash or restart; they are stopped as partial. Every stopped recording
 * without a final file gets its job (again: one per recording).
 */
export async function reconcileRecordings(knex: Knex, jobs: JobQueue): Promise<{ interrupted: number; queued: number }> {
  const store = new RecordingStore(knex);
  const running = await store.withStatus('recording');
  for (const recording of running) await store.stopped(recording.id, 'restart', true);
  const processing = await store.withStatus('processing');
  for (const recording of processing) await jobs.send(FINALISE_QUEUE, { recordingId: recording.id }, { singletonKey: recording.id });
  return { interrupted: running.length, queued: processing.length };
}
