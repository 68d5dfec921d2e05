/** Test data for the retention and legal-hold tests: calls placed in the past with everything a call can have. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { recordingDir } from '../app/recordings/storage';

export const DAY_MS = 24 * 60 * 60 * 1000;

export function daysAgo(days: number): Date {
  return new Date(Date.now() - days * DAY_MS);
}

export interface SeededCall {
  callId: string;
  recordingId?: string;
  recordingDir?: string;
}

/**
 * A call of `organisationId` (ended `endedDaysAgo` days ago, or open when
 * `status` says so) with a card, two chat messages, the clerk's note, and
 * optionally a recording (row, a track row, two small files on disk) and
 * the customer's consent.
 */
export async function seedCall(
  knex: Knex,
  organisationId: string,
  options: { endedDaysAgo?: number; status?: 'waiting' | 'active' | 'ended'; clerkId?: string; recording?: 'ready' | 'recording' | 'processing' | false; dataDir?: string },
): Promise<SeededCall> {
  const status = options.status ?? 'ended';
  const ended = status === 'ended' ? daysAgo(options.endedDaysAgo ?? 0) : null;
  const created = daysAgo((options.endedDaysAgo ?? 0) + 1);
  const [call] = await knex('calls')
    .insert({ organisation_id: organisationId, clerk_id: options.clerkId ?? null, status, reference: 'CASE-1', guest_token_hash: crypto.randomBytes(32).toString('hex'), created_at: created, started_at: created, ended_at: ended, end_reason: ended ? 'clerk_ended' : null })
    .returning('id');
  const callId = call!.id as string;
  const [item] = await knex('call_items').insert({ organisation_id: organisationId, call_id: callId, sku: 'SKU-1', name: 'Sofa', price_cents: 9900, currency: 'EUR', position: 1 }).returning('id');
  await knex('call_messages').insert([
    { organisation_id: organisationId, call_id: callId, sender: 'customer', body: 'Hello' },
    { organisation_id: organisationId, call_id: callId, sender: 'customer', kind: 'question', item_id: item!.id, body: '' },
  ]);
  await knex('call_notes').insert({ organisation_id: organisationId, call_id: callId, body: 'private note' });
  if (!options.recording) return { callId };
  const [recording] = await knex('recordings')
    .insert({ organisation_id: organisationId, call_id: callId, status: options.recording, started_at: created, stopped_at: options.recording === 'recording' ? null : created, file_name: options.recording === 'ready' ? 'recording.mp4' : null, size: 10 })
    .returning('id');
  await knex('recording_tracks').insert({ recording_id: recording!.id, role: 'customer', file_name: 'tracks/customer-1.mkv', kinds: ['audio', 'video'], started_at_ms: 0 });
  await knex('recording_consents').insert({ organisation_id: organisationId, call_id: callId, recording_id: recording!.id, role: 'customer', answer: 'granted', notice_text: 'We record.', notice_version: 'v1', language: 'en', ip: '203.0.113.7', answered_at: created });
  const dir = recordingDir(options.dataDir!, organisationId, recording!.id);
  fs.mkdirSync(path.join(dir, 'tracks'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'recording.mp4'), Buffer.alloc(10, 1));
  fs.writeFileSync(path.join(dir, 'tracks', 'customer-1.mkv'), Buffer.alloc(6, 2));
  return { callId, recordingId: recording!.id, recordingDir: dir };
}

/** How many rows of each kind a call still has. */
export interface Remaining {
  call: number;
  items: number;
  messages: number;
  notes: number;
  recordings: number;
  consents: number;
}

export async function remaining(knex: Knex, callId: string): Promise<Remaining> {
  const n = async (table: string) => Number((await knex(table).where({ call_id: callId }).count({ n: '*' }))[0]!.n);
  return {
    call: Number((await knex('calls').where({ id: callId }).count({ n: '*' }))[0]!.n),
    items: await n('call_items'),
    messages: await n('call_messages'),
    notes: await n('call_notes'),
    recordings: await n('recordings'),
    consents: await n('recording_consents'),
  };
}

/** Sets an organisation's retention settings directly (the form is tested on its own). */
export async function setRetention(knex: Knex, organisationId: string, retention: Record<string, number>): Promise<void> {
  await knex('organisations').where({ id: organisationId }).update({ settings: knex.raw(`settings || ?::jsonb`, [JSON.stringify({ retention })]) });
}
