import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Response } from 'express';
import { ZipFile } from 'yazl';
import { revealRows } from '../audit/personal';
import { OrganisationScopedService } from '../access/scoped-service';
import { ConflictError, NotFoundError } from '../core/errors';
import type { Translate } from '../i18n';
import { decryptRange } from '../recordings/crypto';
import { RecordingKeyMissingError } from '../recordings/send';
import { recordingDir } from '../recordings/storage';
import { countOrganisationCalls, exportedCalls } from '../calls/store';
import { customerConsentsOf, playableRecordingsOf } from '../recordings/service';
import { exportedCuration } from '../curation/service';
import { lockRequest, markExecuted, requestForExecution } from './service';
import { customerEventsOfCall } from '../audit/store';

interface ZipRecording {
  id: string;
  callId: string;
  path: string;
  size: number;
  sha256: string | null;
  encrypted: boolean;
}

const json = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');

/**
 * An access request's answer: one ZIP with everything the appliance holds
 * about the request's calls. Per call: `call.json` (metadata),
 * `selections.json` (the cards shown), `chat.json`, `notes.json` (the
 * clerk's notes), `consents.json` (the consent ledger, with IPs),
 * `events.json` (the customer's own audit events, with IPs and user agents
 * decrypted while their key exists, "erased" after),
 * `recordings.json` and the recordings themselves (`recordings/<id>.mp4`,
 * decrypted when stored encrypted). A README explains the files.
 *
 * Nothing is stored: the ZIP is built while it is sent, the recordings are
 * streamed (never read into memory), stored uncompressed (MP4 does not
 * compress). "Executing" the request records what will be in it.
 */
export class AccessExport extends OrganisationScopedService {
  private async request(requestId: string, trx = this.knex) {
    const request = await requestForExecution(trx, this.organisationId, requestId);
    if (!request) throw new NotFoundError();
    if (request.kind !== 'access') throw new ConflictError('request_kind', { messageKey: 'requests.errors.kind' });
    return request;
  }

  private async recordings(callIds: string[], dataDir: string): Promise<ZipRecording[]> {
    if (callIds.length === 0) return [];
    const rows = await playableRecordingsOf(this.knex, this.organisationId, callIds);
    return rows
      .filter((r) => Number(r.size) > 0)
      .map((r) => ({ id: r.id, callId: r.call_id, path: path.join(recordingDir(dataDir, this.organisationId, r.id), path.basename(r.file_name!)), size: Number(r.size), sha256: r.sha256, encrypted: r.encrypted === true }));
  }

  /** Marks the request executed (in progress), recording what the ZIP holds. */
  async prepare(requestId: string, dataDir: string): Promise<{ calls: number; recordings: number }> {
    return this.knex.transaction(async (trx) => {
      await lockRequest(trx, this.organisationId, requestId);
      const request = await this.request(requestId, trx);
      if (request.executed_at || !['open', 'in_progress'].includes(request.status)) throw new ConflictError('request_executed', { messageKey: 'requests.errors.executed' });
      const calls = request.call_ids.length ? await countOrganisationCalls(trx, this.organisationId, request.call_ids) : 0;
      const result = { calls, recordings: (await this.recordings(request.call_ids, dataDir)).length };
      await markExecuted(trx, requestId, this.caller.user.id, result, request.status);
      await this.audit.record({ ...this.base(), action: 'subject_request.executed', target: { type: 'subject_request', id: requestId }, details: { kind: 'access', ...result } }, trx);
      return result;
    });
  }

  /** The customer's own audit events of a call (also consent events that name the call in their details), IP and user agent readable or "erased". */
  private async customerEvents(callId: string): Promise<Record<string, unknown>[]> {
    const rows = await customerEventsOfCall(this.knex, this.organisationId, callId);
    const revealed = await revealRows(this.knex, rows);
    return revealed.map(({ erased, ...row }) => ({ ...row, ...Object.fromEntries(erased.map((field) => [field, 'erased'])) }));
  }

  /** Sends the ZIP (audited before the first byte); the request must have been executed. */
  async send(requestId: string, res: Response, options: { dataDir: string; key: Buffer | null; t: Translate }): Promise<void> {
    const request = await this.request(requestId);
    if (!request.executed_at) throw new ConflictError('request_not_executed', { messageKey: 'requests.errors.not_executed' });
    const recordings = await this.recordings(request.call_ids, options.dataDir);
    if (recordings.some((r) => r.encrypted) && !options.key) throw new RecordingKeyMissingError();
    const zip = new ZipFile();
    const mtime = new Date();
    zip.addBuffer(Buffer.from(readme(options.t), 'utf8'), 'README.txt', { mtime });
    zip.addBuffer(json({ id: request.id, kind: request.kind, registered_at: request.created_at, due_at: request.due_at, calls: request.call_ids.length, exported_at: mtime }), 'request.json', { mtime });
    const calls = request.call_ids.length ? await exportedCalls(this.knex, this.organisationId, request.call_ids) : [];
    for (const call of calls) {
      const dir = `calls/${call.id}`;
      zip.addBuffer(json(call), `${dir}/call.json`, { mtime });
      const curation = await exportedCuration(this.knex, call.id);
      zip.addBuffer(json(curation.selections), `${dir}/selections.json`, { mtime });
      zip.addBuffer(json(curation.chat), `${dir}/chat.json`, { mtime });
      zip.addBuffer(json(curation.notes), `${dir}/notes.json`, { mtime });
      zip.addBuffer(json(await customerConsentsOf(this.knex, call.id)), `${dir}/consents.json`, { mtime });
      zip.addBuffer(json(await this.customerEvents(call.id)), `${dir}/events.json`, { mtime });
      const own = recordings.filter((r) => r.callId === call.id);
      zip.addBuffer(json(own.map((r) => ({ id: r.id, file: `recordings/${r.id}.mp4`, size: r.size, sha256: r.sha256 }))), `${dir}/recordings.json`, { mtime });
      for (const recording of own) {
        zip.addReadStreamLazy(`${dir}/recordings/${recording.id}.mp4`, { mtime, compress: false, size: recording.size }, (cb) => {
          try {
            cb(null, recording.encrypted ? decryptRange(recording.path, options.key!, 0, recording.size - 1) : fs.createReadStream(recording.path));
          } catch (err) {
            cb(err, undefined as never);
          }
        });
      }
    }
    zip.end();
    await this.audit.record({ ...this.base(), action: 'subject_request.downloaded', target: { type: 'subject_request', id: requestId }, details: { calls: calls.length, recordings: recordings.length } });
    res.set({ 'Content-Type': 'application/zip', 'Content-Disposition': `attachment; filename="vclerk-access-${request.id}.zip"`, 'Cache-Control': 'no-store' });
    await new Promise<void>((resolve, reject) => {
      // A recording that cannot be read (missing, damaged, wrong key) breaks the download rather than sending a partial ZIP as if whole.
      zip.on('error', (err: unknown) => {
        res.destroy(err as Error);
        reject(err);
      });
      pipeline(zip.outputStream, res).then(resolve, reject);
    });
  }
}

function readme(t: Translate): string {
  return [t('requests.zip.title'), '', t('requests.zip.intro'), '', ...['request', 'call', 'selections', 'chat', 'notes', 'consents', 'events', 'recordings', 'media'].map((k) => `- ${t(`requests.zip.file_${k}`)}`), '', t('requests.zip.sha'), ''].join('\n');
}
