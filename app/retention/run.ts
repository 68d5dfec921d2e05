import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { SYSTEM } from '../audit/actions';
import { countKeysUsedBefore, destroyKeysUsedBefore } from '../audit/personal';
import { AuditService } from '../audit/service';
import { LegalHolds, type ActiveHolds } from '../holds/service';
import { recordingDir, removeRecordingFiles } from '../recordings/storage';
import { RetentionSettingsStore, retentionKinds, type RetentionKind, type RetentionSettings } from './settings';
import { anonymiseDueCalls, deleteDueCalls, dueCallIds } from '../calls/store';
import { organisationIds } from '../organisation/store';
import { deleteLoggedRequests, requestsLoggedBefore } from './api-requests';
import { deleteConsents, deleteFinishedRecording, finishedRecordingsOf, orphanedConsentsOf } from '../recordings/service';
import { curationKey, curationOfCalls, deleteCuration, type CurationContent } from '../curation/service';
import { aggregateInsights } from '../insights/aggregate';
import { deleteFiguresBefore } from '../insights/store';

const DAY_MS = 24 * 60 * 60 * 1000;
const BATCH = 500;
/** Recordings whose recorder or finishing job may still write: never touched. */

/** What one run did to one kind of data of one organisation; written to the audit trail as `retention.deleted`. */
export interface Receipt {
  organisationId: string;
  kind: RetentionKind;
  /** The setting in days, and the moment before which data was due. */
  days: number;
  cutoff: Date;
  /** Rows deleted (recordings: recordings; notes: one per call; audit_customer_ips: keys destroyed). */
  rows: number;
  /** Calls only: rows kept as the anchor of consent records, with their reference, link and clerk removed. */
  anonymised: number;
  /** Recordings only: files removed and their bytes. */
  files: number;
  bytes: number;
  /** Rows due but kept because a legal hold covers them. */
  heldSkipped: number;
}

export interface RetentionOptions {
  dataDir: string;
  /** The clock (tests place data in the past instead, or move this forward). */
  now?: Date;
  /** Only this organisation (the "Run now" button); else every organisation. */
  organisationId?: string;
}

/**
 * The retention job: for each organisation and kind, deletes what is older
 * than its setting — rows and, for recordings, their files — except what a
 * legal hold covers. Only ended calls are touched (a waiting or active
 * call, and everything in it, never), and only finished recordings.
 * Deletes in batches; writes one receipt per organisation and kind that
 * deleted anything (counts, cutoff, setting, held rows skipped — never
 * content or ids of people). Answers every receipt, also the empty ones.
 */
export async function runRetention(knex: Knex, options: RetentionOptions): Promise<Receipt[]> {
  const now = options.now ?? new Date();
  const organisations = options.organisationId
    ? [options.organisationId]
    : await organisationIds(knex);
  const receipts: Receipt[] = [];
  for (const organisationId of organisations) {
    // Insights counts what is due before it goes: its figures outlive the calls they came from.
    await aggregateInsights(knex, { organisationId, now });
    const settings = await new RetentionSettingsStore(knex).get(organisationId);
    const holds = await new LegalHolds(knex).active(organisationId);
    const run = new OrganisationRun(knex, organisationId, settings, holds, now, options.dataDir);
    for (const kind of retentionKinds) receipts.push(await run.kind(kind));
  }
  return receipts;
}

/** One organisation's run: one method per kind. */
class OrganisationRun {
  constructor(
    private readonly knex: Knex,
    private readonly organisationId: string,
    private readonly settings: RetentionSettings,
    private readonly holds: ActiveHolds,
    private readonly now: Date,
    private readonly dataDir: string,
  ) {}

  async kind(kind: RetentionKind): Promise<Receipt> {
    const days = this.settings[kind];
    const receipt: Receipt = { organisationId: this.organisationId, kind, days, cutoff: new Date(this.now.getTime() - days * DAY_MS), rows: 0, anonymised: 0, files: 0, bytes: 0, heldSkipped: 0 };
    let failure: unknown;
    try {
      await this[kind](receipt);
    } catch (err) {
      failure = err;
    }
    if (receipt.rows || receipt.anonymised || receipt.files) {
      await new AuditService(this.knex).record({
        organisationId: this.organisationId,
        actor: SYSTEM,
        action: 'retention.deleted',
        target: { type: 'organisation', id: this.organisationId },
        details: {
          kind,
          days,
          cutoff: receipt.cutoff.toISOString(),
          rows: receipt.rows,
          ...(kind === 'calls' ? { anonymised: receipt.anonymised } : {}),
          ...(kind === 'recordings' ? { files: receipt.files, bytes: receipt.bytes } : {}),
          ...(kind === 'audit_customer_ips' ? { keys_destroyed: receipt.rows } : {}),
          held_skipped: receipt.heldSkipped,
          ...(failure ? { incomplete: true } : {}),
        },
      });
    }
    if (failure) throw failure;
    return receipt;
  }

  /** Ended calls of this organisation that ended before the cutoff. */
  private dueCalls(cutoff: Date): Knex.QueryBuilder {
    return dueCallIds(this.knex, this.organisationId, cutoff);
  }

  /** Calls a hold keeps whole (`whole`), or also those with a held recording. */
  private heldCalls(withRecordings: boolean): string[] {
    return [...this.holds.calls, ...(withRecordings ? this.holds.recordingCalls : [])];
  }

  /** Deletes one kind of content of due calls in batches; counts the due rows a hold keeps. */
  private async callContent(receipt: Receipt, content: CurationContent): Promise<void> {
    const key = curationKey(content);
    const due = () => curationOfCalls(this.knex, content, this.organisationId, this.dueCalls(receipt.cutoff));
    if (this.holds.organisation) {
      receipt.heldSkipped = await count(due());
      return;
    }
    const held = this.heldCalls(false);
    if (held.length) receipt.heldSkipped = await count(due().whereIn('call_id', held));
    for (;;) {
      const batch = due().modify((q) => (held.length ? q.whereNotIn('call_id', held) : q)).select(key).limit(BATCH);
      const deleted = await deleteCuration(this.knex, content, batch);
      receipt.rows += deleted;
      if (deleted < BATCH) break;
    }
  }

  private chat(receipt: Receipt): Promise<void> {
    return this.callContent(receipt, 'chat');
  }

  private notes(receipt: Receipt): Promise<void> {
    return this.callContent(receipt, 'notes');
  }

  private selections(receipt: Receipt): Promise<void> {
    return this.callContent(receipt, 'selections');
  }

  /** Finished recordings of due calls: per recording, the row (with its tracks) and its directory, in one transaction. */
  private async recordings(receipt: Receipt): Promise<void> {
    const due = () => finishedRecordingsOf(this.knex, this.organisationId, this.dueCalls(receipt.cutoff));
    if (this.holds.organisation) {
      receipt.heldSkipped = await count(due());
      return;
    }
    const heldCalls = this.heldCalls(false);
    const heldRecordings = [...this.holds.recordings];
    const isHeld = (q: Knex.QueryBuilder) => q.where((w) => {
      if (heldCalls.length) w.orWhereIn('call_id', heldCalls);
      if (heldRecordings.length) w.orWhereIn('id', heldRecordings);
    });
    if (heldCalls.length || heldRecordings.length) receipt.heldSkipped = await count(isHeld(due()));
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const query = due().where('id', '>', after).orderBy('id').limit(BATCH).select('id');
      if (heldCalls.length) query.whereNotIn('call_id', heldCalls);
      if (heldRecordings.length) query.whereNotIn('id', heldRecordings);
      const batch = ((await query) as { id: string }[]).map((r) => r.id);
      for (const id of batch) {
        await this.knex.transaction(async (trx) => {
          if (!(await deleteFinishedRecording(trx, this.organisationId, id))) return;
          const dir = recordingDir(this.dataDir, this.organisationId, id);
          const { files, bytes } = await measure(dir);
          await removeRecordingFiles(this.dataDir, this.organisationId, id);
          receipt.rows += 1;
          receipt.files += files;
          receipt.bytes += bytes;
        });
      }
      if (batch.length < BATCH) break;
      after = batch[batch.length - 1]!;
    }
  }

  /** Consent records of due calls whose recordings are all gone (proof of consent outlives the recording). */
  private async consents(receipt: Receipt): Promise<void> {
    const due = () => orphanedConsentsOf(this.knex, this.organisationId, this.dueCalls(receipt.cutoff));
    if (this.holds.organisation) {
      receipt.heldSkipped = await count(due());
      return;
    }
    const held = this.heldCalls(true);
    if (held.length) receipt.heldSkipped = await count(due().whereIn('rc.call_id', held));
    for (;;) {
      const batch = due().modify((q) => (held.length ? q.whereNotIn('rc.call_id', held) : q)).select('rc.id').limit(BATCH);
      const deleted = await deleteConsents(this.knex, batch);
      receipt.rows += deleted;
      if (deleted < BATCH) break;
    }
  }

  /**
   * Due calls: deleted when nothing hangs on them any more (their chat,
   * selections and notes are due by then: the setting is never shorter);
   * a call still holding a recording or consent records is anonymised
   * instead (reference, customer link and clerk removed) and deleted by a
   * later run once those are gone.
   */
  private async calls(receipt: Receipt): Promise<void> {
    const due = () => this.dueCalls(receipt.cutoff).clone().clearSelect();
    if (this.holds.organisation) {
      receipt.heldSkipped = await count(due());
      return;
    }
    const held = this.heldCalls(true);
    if (held.length) receipt.heldSkipped = await count(due().whereIn('id', held));
    const free = () => due().modify((q) => (held.length ? q.whereNotIn('id', held) : q));
    await deleteDueCalls(this.knex, free, BATCH, (deleted) => {
      receipt.rows += deleted;
    });
    receipt.anonymised = await anonymiseDueCalls(this.knex, free);
  }

  private async api_requests(receipt: Receipt): Promise<void> {
    const due = () => requestsLoggedBefore(this.knex, this.organisationId, receipt.cutoff);
    if (this.holds.organisation) {
      receipt.heldSkipped = await count(due());
      return;
    }
    await deleteLoggedRequests(this.knex, due, BATCH, (deleted) => {
      receipt.rows += deleted;
    });
  }

  /** Insights' daily figures of days before the cutoff's day (UTC; a day either way changes nothing a person could be found by). */
  private async insights(receipt: Receipt): Promise<void> {
    if (this.holds.organisation) return;
    receipt.rows = await deleteFiguresBefore(this.knex, this.organisationId, receipt.cutoff.toISOString().slice(0, 10));
  }

  /**
   * Customers' IPs and user agents in the audit trail: the trail is
   * append-only, so their keys are destroyed instead (crypto-shredding) once
   * the newest event under a key is older than the setting. A hold on a call
   * (or a recording of it) keeps the call's key; one on the organisation,
   * every key.
   */
  private async audit_customer_ips(receipt: Receipt): Promise<void> {
    if (this.holds.organisation) {
      receipt.heldSkipped = await countKeysUsedBefore(this.knex, this.organisationId, receipt.cutoff);
      return;
    }
    const held = this.heldCalls(true);
    if (held.length) receipt.heldSkipped = await countKeysUsedBefore(this.knex, this.organisationId, receipt.cutoff, held);
    receipt.rows = await destroyKeysUsedBefore(this.knex, this.organisationId, receipt.cutoff, held, this.now);
  }
}

async function count(query: Knex.QueryBuilder): Promise<number> {
  const [row] = await query.clearSelect().count({ n: '*' });
  return Number(row?.n ?? 0);
}

/** Files under a directory and their bytes (absent: none). */
async function measure(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true, recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { files, bytes };
    throw err;
  }
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    files += 1;
    bytes += (await fs.promises.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}
