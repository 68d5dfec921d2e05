import type { Knex } from 'knex';
import { organisationRecording } from '../recordings/service';
import { activeHoldRows } from './store';

export const holdScopes = ['organisation', 'call', 'recording'] as const;
export type HoldScope = (typeof holdScopes)[number];

/** What an organisation's active holds cover, for the retention job. */
export interface ActiveHolds {
  /** The whole organisation is on hold: nothing of it may be deleted. */
  organisation: boolean;
  /** Calls held as a whole (everything of the call). */
  calls: Set<string>;
  /** Recordings held one by one. */
  recordings: Set<string>;
  /** The calls of those recordings: their row and consent records stay too. */
  recordingCalls: Set<string>;
}

/**
 * The legal-hold check, for everything that deletes data: the retention
 * job and the erasure of a data subject's data. Built with knex alone
 * (no caller), so jobs can use it; it only reads.
 *
 * A hold on a call protects everything of that call; a hold on a recording
 * protects the recording, its call's consent records and the call's row
 * (the recording hangs on it); a hold on the organisation protects all.
 */
export class LegalHolds {
  constructor(private readonly knex: Knex) {}

  /**
   * Whether anything asked about is held: the call (as a whole, or one of
   * its recordings) or the recording (itself, or its call as a whole), or
   * the organisation. With both ids, either being held answers true.
   */
  async protects(organisationId: string, target: { callId?: string; recordingId?: string }): Promise<boolean> {
    const holds = await this.active(organisationId);
    if (holds.organisation) return true;
    if (target.callId && (holds.calls.has(target.callId) || holds.recordingCalls.has(target.callId))) return true;
    if (target.recordingId) {
      if (holds.recordings.has(target.recordingId)) return true;
      const recording = await organisationRecording(this.knex, organisationId, target.recordingId);
      if (recording && holds.calls.has(recording.call_id)) return true;
    }
    return false;
  }

  /** The calls with anything held (held calls and the calls of held recordings); 'all' when the organisation itself is on hold. */
  async heldCallIds(organisationId: string): Promise<Set<string> | 'all'> {
    const holds = await this.active(organisationId);
    if (holds.organisation) return 'all';
    return new Set([...holds.calls, ...holds.recordingCalls]);
  }

  /** The organisation's active holds, by what they cover. */
  async active(organisationId: string): Promise<ActiveHolds> {
    const rows = await activeHoldRows(this.knex, organisationId);
    const holds: ActiveHolds = { organisation: false, calls: new Set(), recordings: new Set(), recordingCalls: new Set() };
    for (const row of rows) {
      if (row.scope === 'organisation') holds.organisation = true;
      else if (row.scope === 'call') holds.calls.add(row.call_id!);
      else {
        holds.recordings.add(row.recording_id!);
        holds.recordingCalls.add(row.call_id!);
      }
    }
    return holds;
  }
}
