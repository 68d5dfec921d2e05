import fs from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import { CallRecorder, type PortAllocator, type RecordingTrack, type Room } from '../../media';
import { SYSTEM, type Actor } from '../audit/actions';
import type { RecordingState, ServerEvents } from '../calls/protocol';
import { CallRefusal } from '../calls/refusal';
import type { SocketIdentity } from '../calls/signalling-auth';
import { callOrganisation, findCall } from '../calls/store';
import { userNameAndLanguage } from '../staff/store';
import type { JobQueue } from '../jobs/queue';
import type { Logger } from '../core/logger';
import { organisationRecordingNotice, RecordingPolicyStore, type RecordingPolicy } from './policy';
import { RecordingStore } from './service';
import { assertDiskSpace, DiskFullError, recordingDir } from './storage';

export const FINALISE_QUEUE = 'recording.finalise';

/** How often a running recording checks the free disk space. */
const DISK_CHECK_MS = 5000;

export interface RecordingLiveDeps {
  knex: Knex;
  logger: Logger;
  dataDir: string;
  ffmpegPath: string;
  minFreeMb: number;
  ports: PortAllocator;
  jobs?: JobQueue;
}

type Broadcast = <E extends keyof ServerEvents>(callId: string, event: E, data: ServerEvents[E]) => void;

interface Active {
  recordingId: string;
  organisationId: string;
  startedAt: Date;
  recorder: CallRecorder | null;
  stopping: Promise<void> | null;
  diskTimer?: NodeJS.Timeout;
}

interface CallState {
  requested: boolean;
  reason: string | null;
  active: Active | null;
  /** Serialises start and stop of this call's recording. */
  lock: Promise<unknown>;
}

function actorFor(who: SocketIdentity): Actor {
  return who.participant.role === 'clerk'
    ? { type: 'user', id: who.participant.userId, label: who.participant.label, organisationId: who.participant.organisationId }
    : { type: 'guest', label: who.participant.label };
}

function meta(who: SocketIdentity) {
  return { ip: who.ip, userAgent: who.userAgent };
}

/**
 * Recording in live calls: the policy decides who may start it, the
 * customer's consent (in the ledger) decides whether it starts, and the
 * media recorder writes each participant's media as the call goes. When a
 * recording stops (the clerk, a withdrawn consent, the recorder dying, a
 * full disk, the call ending, a shutdown) its final file is made by a
 * background job that survives restarts.
 */
export class RecordingLive {
  private readonly store: RecordingStore;
  private readonly policies: RecordingPolicyStore;
  private readonly calls = new Map<string, CallState>();
  private broadcast: Broadcast = () => undefined;

  constructor(private readonly deps: RecordingLiveDeps) {
    this.store = new RecordingStore(deps.knex);
    this.policies = new RecordingPolicyStore(deps.knex);
  }

  /** The hub tells how to reach a call's participants (recordings/module.ts). */
  attach(broadcast: Broadcast): void {
    this.broadcast = broadcast;
  }

  private call(callId: string): CallState {
    let state = this.calls.get(callId);
    if (!state) this.calls.set(callId, (state = { requested: false, reason: null, active: null, lock: Promise.resolve() }));
    return state;
  }

  /** Runs `task` after every earlier start/stop of this call finished. */
  private serial<T>(callId: string, task: () => Promise<T>): Promise<T> {
    const state = this.call(callId);
    const run = state.lock.then(task, task);
    state.lock = run.catch(() => undefined);
    return run;
  }

  async state(callId: string, policy?: RecordingPolicy): Promise<RecordingState> {
    const p = policy ?? (await this.policies.get((await callOrganisation(this.deps.knex, callId)) as string));
    const state = this.call(callId);
    const active = state.active && !state.active.stopping ? state.active : null;
    return {
      mode: p.mode,
      status: active ? 'recording' : state.requested ? 'requested' : 'idle',
      recordingId: active?.recordingId ?? null,
      startedAt: active?.startedAt.toISOString() ?? null,
      reason: state.reason,
      allowUnrecorded: p.allowUnrecorded,
    };
  }

  private async announce(callId: string): Promise<RecordingState> {
    const state = await this.state(callId);
    this.broadcast(callId, 'recording.state', state);
    return state;
  }

  /** Where recording stands in the participant's call (`recording.status`). */
  async status(who: SocketIdentity): Promise<RecordingState> {
    return this.state(who.callId);
  }

  /** The clerk asks to record (on demand): the customer is asked for consent first. */
  async requestStart(who: SocketIdentity): Promise<RecordingState> {
    const policy = await this.policies.get(who.organisationId);
    if (policy.mode !== 'on_demand') throw new CallRefusal('forbidden');
    const state = this.call(who.callId);
    if (state.active && !state.active.stopping) return this.state(who.callId, policy);
    await this.checkDisk();
    state.requested = true;
    state.reason = null;
    return this.announce(who.callId);
  }

  /** The clerk stops the recording (or withdraws the request). */
  async requestStop(who: SocketIdentity): Promise<RecordingState> {
    const state = this.call(who.callId);
    state.requested = false;
    await this.stop(who.callId, 'stopped', false, actorFor(who), meta(who));
    return this.announce(who.callId);
  }

  /** The customer's answer: granted starts a requested recording, withdrawn stops a running one. */
  async consent(who: SocketIdentity, room: Room, payload: { answer: 'granted' | 'declined' | 'withdrawn'; noticeVersion: string; language: 'en' | 'de' }): Promise<RecordingState> {
    const notice = await organisationRecordingNotice(this.deps.knex, who.organisationId, payload.language);
    // The version names the text the customer saw; an outdated page must be reloaded.
    if (notice.version !== payload.noticeVersion) throw new CallRefusal('invalid_message');
    const policy = await this.policies.get(who.organisationId);
    if (policy.mode === 'off') throw new CallRefusal('forbidden');
    const state = this.call(who.callId);
    const active = state.active && !state.active.stopping ? state.active : null;
    const call = { id: who.callId, organisationId: who.organisationId };
    await this.store.consent(call, { recordingId: active?.recordingId ?? null, role: 'customer', userId: null, answer: payload.answer, notice }, actorFor(who), meta(who));
    if (payload.answer === 'granted') {
      if (policy.mode === 'on_demand' && state.requested) await this.start(who.callId, who.organisationId, room);
      else if (policy.mode === 'always') await this.startWhenBothThere(who.callId, who.organisationId, room);
    } else {
      state.requested = false;
      state.reason = payload.answer;
      if (active) await this.stop(who.callId, payload.answer === 'withdrawn' ? 'consent_withdrawn' : 'declined', false, actorFor(who), meta(who));
    }
    return this.announce(who.callId);
  }

  /**
   * Before a participant joins the media: under "always" the customer
   * must have consented (or declined where unrecorded calls are allowed).
   */
  async beforeJoin(who: SocketIdentity): Promise<void> {
    if (who.participant.role !== 'customer') return;
    const policy = await this.policies.get(who.organisationId);
    if (policy.mode !== 'always') return;
    const answer = await this.store.latestAnswer(who.callId, 'customer');
    if (answer === 'granted') return;
    if ((answer === 'declined' || answer === 'withdrawn') && policy.allowUnrecorded) return;
    throw new CallRefusal('consent_required');
  }

  /** After a join: under "always" recording starts once both are there and the customer consented. */
  async afterJoin(who: SocketIdentity, room: Room): Promise<void> {
    const policy = await this.policies.get(who.organisationId);
    if (policy.mode === 'always') await this.startWhenBothThere(who.callId, who.organisationId, room);
    if (policy.mode !== 'off') await this.announce(who.callId);
  }

  private async startWhenBothThere(callId: string, organisationId: string, room: Room): Promise<void> {
    if (!room.hasRole('clerk') || !room.hasRole('customer')) return;
    if ((await this.store.latestAnswer(callId, 'customer')) !== 'granted') return;
    const state = this.call(callId);
    if (state.active && !state.active.stopping) return;
    // A recording stopped by the customer or the recorder is not restarted behind their back.
    if (state.reason === 'withdrawn' || state.reason === 'failed' || state.reason === 'disk_full') return;
    await this.start(callId, organisationId, room).catch((err) => {
      if (!(err instanceof CallRefusal)) throw err;
      state.reason = err.code === 'disk_full' ? 'disk_full' : 'failed';
    });
  }

  private async checkDisk(): Promise<void> {
    try {
      await assertDiskSpace(this.deps.dataDir, this.deps.minFreeMb);
    } catch (err) {
      if (err instanceof DiskFullError) throw new CallRefusal('disk_full');
      throw err;
    }
  }

  /** Whether a recorder's failure came from a full disk: ffmpeg said so, or the free space is below the reserve now. */
  private async diskFull(reason: string): Promise<boolean> {
    if (/No space left on device|ENOSPC/i.test(reason)) return true;
    return assertDiskSpace(this.deps.dataDir, this.deps.minFreeMb).then(() => false, (err: unknown) => err instanceof DiskFullError);
  }

  private async start(callId: string, organisationId: string, room: Room): Promise<void> {
    await this.serial(callId, async () => {
      const state = this.call(callId);
      if (state.active && !state.active.stopping) return;
      state.requested = false;
      await this.checkDisk();
      const call = await findCall(this.deps.knex, { id: callId });
      if (!call || call.status === 'ended') return;
      const recording = await this.store.create({ id: callId, organisationId }, SYSTEM, call.clerkId ?? null, { ip: null, userAgent: null });
      const dir = recordingDir(this.deps.dataDir, organisationId, recording.id);
      const tracksDir = path.join(dir, 'tracks');
      await fs.mkdir(tracksDir, { recursive: true, mode: 0o700 });
      const active: Active = { recordingId: recording.id, organisationId, startedAt: recording.startedAt, recorder: null, stopping: null };
      state.active = active;
      state.reason = null;
      // The clerk's side of the ledger: recording is their organisation's decision, noted with the same notice.
      const clerk = call.clerkId ? await userNameAndLanguage(this.deps.knex, call.clerkId) : undefined;
      if (clerk) {
        await this.store.consent({ id: callId, organisationId }, { recordingId: recording.id, role: 'clerk', userId: clerk.id, answer: 'granted', notice: await organisationRecordingNotice(this.deps.knex, organisationId, clerk.language) }, { type: 'user', id: clerk.id, label: clerk.name, organisationId }, { ip: null, userAgent: null });
      }
      try {
        const recorder = await CallRecorder.start(room, { dir: tracksDir, ffmpegPath: this.deps.ffmpegPath, ports: this.deps.ports, logger: this.deps.logger.child({ callId, recordingId: recording.id }) });
        active.recorder = recorder;
        const save = (track: RecordingTrack) =>
          this.store
            .addTrack(recording.id, { role: track.role, fileName: path.relative(dir, track.file), kinds: track.kinds, startedAtMs: track.startedAt, endedAtMs: track.endedAt, exitCode: track.exitCode, partial: track.partial })
            .catch((err) => this.deps.logger.error({ err, recordingId: recording.id }, 'could not save a recording track'));
        recorder.on('trackStarted', (track) => void save(track));
        recorder.on('trackEnded', (track) => void save(track));
        recorder.on('failed', ({ reason }) => {
          // ffmpeg ends with ENOSPC when the disk fills between two disk checks: that is the reason to give, not "failed".
          void this.diskFull(reason)
            .then((full) => {
              this.deps.logger.warn({ callId, recordingId: recording.id, reason, diskFull: full }, 'recorder failed: recording stopped, kept as partial');
              return this.stop(callId, full ? 'disk_full' : 'failed', true);
            })
            .then(() => this.announce(callId))
            .catch((err: unknown) => this.deps.logger.error({ err, callId }, 'could not stop a failed recording'));
        });
        for (const track of recorder.tracks) await save(track);
      } catch (err) {
        this.deps.logger.error({ err, callId }, 'could not start recording');
        state.reason = 'failed';
        await this.stop(callId, 'failed', true);
        throw new CallRefusal('recording_unavailable');
      }
      active.diskTimer = setInterval(() => {
        assertDiskSpace(this.deps.dataDir, this.deps.minFreeMb).catch((err) => {
          if (!(err instanceof DiskFullError)) return;
          this.deps.logger.warn({ callId }, 'disk space below the reserve: recording stopped');
          void this.stop(callId, 'disk_full', true).then(() => this.announce(callId)).catch((err: unknown) => this.deps.logger.error({ err, callId }, 'could not stop a recording below the disk reserve'));
        });
      }, DISK_CHECK_MS);
      active.diskTimer.unref();
    });
  }

  /** Stops the call's recording (if any) cleanly and queues its final file. */
  async stop(callId: string, reason: string, partial: boolean, actor: Actor = SYSTEM, m = { ip: null as string | null, userAgent: null as string | null }): Promise<void> {
    const state = this.calls.get(callId);
    const active = state?.active;
    if (!state || !active) return;
    if (!active.stopping) {
      active.stopping = (async () => {
        clearInterval(active.diskTimer);
        state.reason = reason === 'consent_withdrawn' ? 'withdrawn' : reason;
        let interrupted = partial;
        if (active.recorder) {
          const tracks = await active.recorder.stop().catch((err) => {
            this.deps.logger.error({ err, callId }, 'stopping the recorder failed');
            return active.recorder!.tracks;
          });
          const dir = recordingDir(this.deps.dataDir, active.organisationId, active.recordingId);
          for (const track of tracks) {
            interrupted ||= track.partial;
            await this.store.addTrack(active.recordingId, { role: track.role, fileName: path.relative(dir, track.file), kinds: track.kinds, startedAtMs: track.startedAt, endedAtMs: track.endedAt, exitCode: track.exitCode, partial: track.partial });
          }
        }
        await this.store.stopped(active.recordingId, reason, interrupted, actor, m);
        await this.deps.jobs?.send(FINALISE_QUEUE, { recordingId: active.recordingId }, { singletonKey: active.recordingId });
        if (state.active === active) state.active = null;
      })();
    }
    await active.stopping;
  }

  /** The ffmpeg processes recording a call now (tests kill one to see a recorder die). */
  processIds(callId: string): number[] {
    return this.calls.get(callId)?.active?.recorder?.processIds() ?? [];
  }

  /** The call ended: its recording stops and its state is forgotten. */
  async callEnded(callId: string): Promise<void> {
    await this.stop(callId, 'call_ended', false);
    this.calls.delete(callId);
  }

  /** Graceful shutdown: every recording stops cleanly (its final file is made by the job queue, now or after the restart). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.calls.keys()].map((callId) => this.stop(callId, 'shutdown', true)));
    this.calls.clear();
  }
}
