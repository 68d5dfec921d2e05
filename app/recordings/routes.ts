import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { flash } from '../http/flash';
import { formAction } from '../http/form-page';
import { organisationForms } from '../organisation/routes';
import { parseQuery } from '../http/query';
import { RecordingAccess, type ListedRecording } from './access';
import { RecordingPolicyStore } from './policy';
import { sendRecordingFile } from './send';
import { recordingDir } from './storage';

export interface RecordingDeps {
  knex: Knex;
  config: Config;
  /** The key for encrypted recordings (from the config), or null. */
  recordingKey: Buffer | null;
}

function access(deps: RecordingDeps, req: Request): RecordingAccess {
  return new RecordingAccess(deps.knex, callerOf(req));
}

/** For links to the recordings (the route table's `opens`): the policy check the pages make, without auditing. */
export function recordingsOpen(deps: RecordingDeps): (req: Request) => Promise<boolean> {
  return (req) => access(deps, req).mayAccess();
}

const pageSchema = z.object({ page: z.coerce.number().int().min(1).max(10000).catch(1) });

function duration(ms: number | null): string {
  if (ms === null) return '';
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

function view(recording: ListedRecording) {
  return { ...recording, duration: duration(recording.durationMs) };
}

/** GET /recordings: the recordings the caller may see, newest first; refreshes while one is being finished. */
export function listRecordings(deps: RecordingDeps): RequestHandler {
  return async (req, res) => {
    const { page } = parseQuery(pageSchema, req);
    const { recordings, more } = await access(deps, req).list(page);
    res.set('Cache-Control', 'no-store').render('recordings/list', {
      title: req.t('recordings.title'),
      recordings: recordings.map(view),
      page,
      more,
      refreshSeconds: recordings.some((r) => r.status === 'recording' || r.status === 'processing') ? 5 : undefined,
    });
  };
}

/** GET /recordings/:id: details, the consent ledger, and the player. */
export function showRecording(deps: RecordingDeps): RequestHandler {
  return async (req, res) => {
    const service = access(deps, req);
    const recording = await service.get(String(req.params.id));
    res.set('Cache-Control', 'no-store').render('recordings/show', {
      title: req.t('recordings.show_title'),
      recording: view(recording),
      consents: await service.consents(recording.id),
      keyMissing: recording.encrypted && !deps.recordingKey,
      refreshSeconds: recording.status === 'recording' || recording.status === 'processing' ? 5 : undefined,
    });
  };
}

/**
 * GET /recordings/:id/media (inline, for the player: range requests) and
 * GET /recordings/:id/download (attachment). The start of a playback (a
 * request from the first byte) and every download are audited; the
 * player's further range requests (seeking) are not.
 */
export function recordingMedia(deps: RecordingDeps, mode: 'play' | 'download'): RequestHandler {
  return async (req, res) => {
    const range = req.get('range');
    const startsAtZero = !range || /^bytes=0-/.test(range.trim());
    const audit = req.method !== 'GET' ? null : mode === 'download' ? 'recording.downloaded' : startsAtZero ? 'recording.played' : null;
    const recording = await access(deps, req).media(String(req.params.id), audit);
    const file = path.join(recordingDir(deps.config.dataDir, recording.organisationId, recording.id), recording.fileName!);
    const day = recording.startedAt.toISOString().slice(0, 10);
    await sendRecordingFile(req, res, {
      path: file,
      encrypted: recording.encrypted,
      size: recording.size ?? 0,
      contentType: 'video/mp4',
      sha256: recording.sha256 ?? undefined,
      downloadName: mode === 'download' ? `recording-${day}-${recording.id.slice(0, 8)}.mp4` : undefined,
    }, deps.recordingKey);
  };
}

/** POST /admin/organisation/recording: the recording policy (audited). */
export function saveRecordingPolicy(deps: RecordingDeps): RequestHandler {
  return formAction(organisationForms(deps.knex).recording, async (req, res) => {
    await new RecordingPolicyStore(deps.knex).save(callerOf(req), req.body);
    flash(req, 'success', 'recordings.policy_saved');
    res.redirect(303, '/admin/organisation#recording');
  });
}
