import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import type { ChatMessage } from '../app/calls/protocol';
import { runRetention } from '../app/retention/run';
import { seedOrganisation, seedUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { join, ok, openCall, sessionCookie } from './support/signal-client';
import { remaining, setRetention } from './retention-seed';


describe('retention during a live call (real server)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkSocket: Socket;
  let customerSocket: Socket;
  let callId: string;
  let organisationId: string;

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 300 });
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, 'Live Retention Bank');
    organisationId = org.id;
    const clerk = await seedUser(knex, org, 'clerk');
    ({ callId, clerkSocket, customerSocket } = await openCall(knex, server.url, clerk, await sessionCookie(server.url, clerk)));
    await join(clerkSocket);
    await join(customerSocket);
  });

  after(async () => {
    clerkSocket?.close();
    customerSocket?.close();
    await server?.close();
  });

  it('a run with the shortest retention, even a year ahead, leaves the active call, its chat and notes alone', async () => {
    const knex = db.current.knex;
    assert.equal((await knex('calls').where({ id: callId }).first())!.status, 'active');
    await ok(clerkSocket, 'chat.send', { text: 'Before the run' });
    await ok(clerkSocket, 'notes.save', { text: 'note before the run' });
    // Placed far in the past, as if the call had been going on for a year.
    await knex('call_messages').where({ call_id: callId }).update({ created_at: new Date(Date.now() - 400 * 24 * 3600 * 1000) });
    await setRetention(knex, organisationId, { recordings: 1, chat: 1, notes: 1, selections: 1, consents: 1, calls: 1, api_requests: 1 });

    await runRetention(knex, { dataDir: server.dataDir, now: new Date(Date.now() + 365 * 24 * 3600 * 1000) });

    const left = await remaining(knex, callId);
    assert.deepEqual([left.call, left.messages, left.notes], [1, 1, 1]);
    const call = await knex('calls').where({ id: callId }).first();
    assert.equal(call!.status, 'active');
    assert.ok(call!.guest_token_hash, 'the customer link still works');

    // The call goes on: both sides still talk, and the state includes the earlier message.
    const { message } = await ok<{ message: ChatMessage }>(customerSocket, 'chat.send', { text: 'After the run' });
    assert.equal(message.body, 'After the run');
    const state = await ok<{ messages: ChatMessage[] }>(clerkSocket, 'curation.sync');
    assert.deepEqual(state.messages.map((m) => m.body), ['Before the run', 'After the run']);
  });
});
