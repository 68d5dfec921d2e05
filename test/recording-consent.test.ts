import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import type { RecordingState } from '../app/calls/protocol';
import { CallService } from '../app/calls/service';
import { recordingNotice } from '../app/recordings/policy';
import { seedOrganisation, seedUser, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { connect, join, ok, openCall, refusedCode, sessionCookie } from './support/signal-client';

const NOTICE = recordingNotice('en');
const consent = (answer: 'granted' | 'declined' | 'withdrawn', noticeVersion = NOTICE.version) => ({ answer, noticeVersion, language: 'en' });

function next(socket: Socket, match: (s: RecordingState) => boolean): Promise<RecordingState> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching recording.state')), 10000);
    const handler = (state: RecordingState) => {
      if (!match(state)) return;
      clearTimeout(timer);
      socket.off('recording.state', handler);
      resolve(state);
    };
    socket.on('recording.state', handler);
  });
}

/** Consent and policy over real signalling (no browser, no media sent): the ledger, the refusals, the join gate. */
describe('recording consent (signalling, real server)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerk: SeededUser;
  let cookie: string;
  let organisationId: string;
  const sockets: Socket[] = [];

  before(async () => {
    server = await startCallServer(db.current, { recordings: true });
    const org = await seedOrganisation(db.current.knex, 'Consent Bank');
    organisationId = org.id;
    clerk = await seedUser(db.current.knex, org, 'clerk');
    cookie = await sessionCookie(server.url, clerk);
  });

  after(async () => {
    for (const s of sockets) s.close();
    await server?.close();
  });

  async function setPolicy(recording: Record<string, unknown>): Promise<void> {
    await db.current.knex('organisations').where({ id: organisationId }).update({
      settings: db.current.knex.raw(`settings || ?::jsonb`, [JSON.stringify({ recording: { mode: 'off', allowUnrecorded: false, adminAccess: false, clerkAccess: false, ...recording } })]),
    });
  }

  async function newCall(): Promise<{ callId: string; clerkSocket: Socket; customerSocket: Socket }> {
    const call = await openCall(db.current.knex, server.url, clerk, cookie);
    sockets.push(call.clerkSocket, call.customerSocket);
    return call;
  }


  it('with recording off, nobody can start it or consent to it', async () => {
    await setPolicy({ mode: 'off' });
    const { clerkSocket, customerSocket } = await newCall();
    assert.equal(await refusedCode(clerkSocket, 'recording.start', {}), 'forbidden');
    assert.equal(await refusedCode(customerSocket, 'recording.consent', consent('granted')), 'forbidden');
    assert.equal((await ok<RecordingState>(customerSocket, 'recording.status')).mode, 'off');
  });

  it('on demand: the clerk asks, the customer declines: the answer is in the ledger and nothing is recorded', async () => {
    await setPolicy({ mode: 'on_demand' });
    const { callId, clerkSocket, customerSocket } = await newCall();
    assert.equal(await refusedCode(customerSocket, 'recording.start', {}), 'forbidden');
    const asked = next(customerSocket, (s) => s.status === 'requested');
    await ok(clerkSocket, 'recording.start');
    await asked;
    const told = next(clerkSocket, (s) => s.status === 'idle' && s.reason === 'declined');
    await ok(customerSocket, 'recording.consent', consent('declined'));
    await told;
    const [entry] = await db.current.knex('recording_consents').where({ call_id: callId });
    assert.equal(entry!.answer, 'declined');
    assert.equal(entry!.role, 'customer');
    assert.equal(entry!.notice_text, NOTICE.text);
    assert.equal(entry!.notice_version, NOTICE.version);
    assert.equal(entry!.ip, '127.0.0.1');
    assert.equal(entry!.recording_id, null);
    assert.equal((await db.current.knex('recordings').where({ call_id: callId })).length, 0, 'no consent, no recording');
    const audited = await db.current.knex('audit_events').where({ action: 'recording.consent', target_id: callId }).first();
    assert.equal(audited!.details.answer, 'declined');
  });

  it('on demand: consent to an outdated notice is refused; to the current one it starts the recording; withdrawing stops it', async () => {
    await setPolicy({ mode: 'on_demand' });
    const { callId, clerkSocket, customerSocket } = await newCall();
    await ok(clerkSocket, 'recording.start');
    assert.equal(await refusedCode(customerSocket, 'recording.consent', consent('granted', 'builtin-000000000000')), 'invalid_message');
    const started = next(clerkSocket, (s) => s.status === 'recording');
    await ok(customerSocket, 'recording.consent', consent('granted'));
    const state = await started;
    const recording = await db.current.knex('recordings').where({ call_id: callId }).first();
    assert.equal(state.recordingId, recording!.id);
    assert.equal(recording!.status, 'recording');
    const ledger = await db.current.knex('recording_consents').where({ call_id: callId }).orderBy('answered_at');
    assert.deepEqual(ledger.map((c) => [c.role, c.answer, c.recording_id]), [['customer', 'granted', recording!.id], ['clerk', 'granted', recording!.id]]);

    const stopped = next(clerkSocket, (s) => s.status === 'idle' && s.reason === 'withdrawn');
    await ok(customerSocket, 'recording.consent', consent('withdrawn'));
    await stopped;
    const after = await db.current.knex('recordings').where({ id: recording!.id }).first();
    assert.notEqual(after!.status, 'recording');
    assert.equal(after!.stop_reason, 'consent_withdrawn');
    const withdrawn = await db.current.knex('recording_consents').where({ call_id: callId, answer: 'withdrawn' }).first();
    assert.equal(withdrawn!.recording_id, recording!.id);
  });

  it('below the free-space reserve no recording starts, with a clear code', async () => {
    const full = await startCallServer(db.current, { recordings: true, env: { VCLERK_RECORDING_MIN_FREE_MB: '10000000' } });
    try {
      await setPolicy({ mode: 'on_demand' });
      const caller = { user: { id: clerk.id, organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
      const { call } = await new CallService(db.current.knex).start(caller, 1);
      const socket = await connect(full.url, { callId: call.id }, cookie);
      sockets.push(socket);
      assert.equal(await refusedCode(socket, 'recording.start', {}), 'disk_full');
      assert.equal((await db.current.knex('recordings').where({ call_id: call.id })).length, 0);
    } finally {
      await full.close();
    }
  });

  it('always: the customer cannot join the media without an answer; declining is enough only where unrecorded calls are allowed', async () => {
    await setPolicy({ mode: 'always', allowUnrecorded: false });
    let call = await newCall();
    assert.equal(await refusedCode(call.customerSocket, 'join', { rtpCapabilities: {} }), 'consent_required');
    await ok(call.customerSocket, 'recording.consent', consent('declined'));
    assert.equal(await refusedCode(call.customerSocket, 'join', { rtpCapabilities: {} }), 'consent_required');

    await setPolicy({ mode: 'always', allowUnrecorded: true });
    await join(call.customerSocket);
    await join(call.clerkSocket);
    assert.equal((await db.current.knex('recordings').where({ call_id: call.callId })).length, 0, 'declined: the call goes on unrecorded');

    call = await newCall();
    await ok(call.customerSocket, 'recording.consent', consent('granted'));
    await join(call.customerSocket);
    const started = next(call.customerSocket, (s) => s.status === 'recording');
    await join(call.clerkSocket);
    await started;
    assert.equal((await db.current.knex('recordings').where({ call_id: call.callId }).first())!.status, 'recording');
  });
});
