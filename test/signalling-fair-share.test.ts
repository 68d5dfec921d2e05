import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { seedOrganisation, seedUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { ask, ok, openCall, sessionCookie } from './support/signal-client';

/**
 * Issue 17's signalling flood jammed the database pool: 60 connections'
 * valid chat (each a transaction) queued up in knex's pool, first come,
 * first served, the real call's chat waited behind all of them, and
 * requests ran into the pool's acquire timeout (`internal_error`).
 *
 * The feature modules' requests now pass the hub's RequestGate: at most half
 * the pool at once, calm connections before flooding ones, calls in turn.
 * Counted here, not timed: how many connections the chat flood takes, and
 * how many flood requests are answered between the real call's chat and its
 * answer.
 */

const FLOOD_CALLS = 10;
const CHATS_EACH = 12;

interface PoolView {
  numUsed(): number;
  numPendingAcquires(): number;
}

describe('signalling: the feature modules get a fair share of the database pool', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let server: CallServer;
  const sockets: Socket[] = [];

  before(async () => {
    server = await startCallServer(db.current, { silenceMs: 120_000 });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server?.close();
  });

  it('keeps a chat flood of many connections out of the pool\'s queue, and serves a calm call before the flooders', async () => {
    const knex = db.current.knex;
    const pool = (knex.client as { pool: PoolView }).pool;
    const org = await seedOrganisation(knex, 'Fair Bank');
    const clerk = await seedUser(knex, org, 'clerk');
    const cookie = await sessionCookie(server.url, clerk);
    const flooders: Socket[] = [];
    for (let i = 0; i < FLOOD_CALLS; i++) {
      const call = await openCall(knex, server.url, clerk, cookie);
      flooders.push(call.clerkSocket, call.customerSocket);
    }
    const real = await openCall(knex, server.url, clerk, cookie);
    sockets.push(...flooders, real.clerkSocket, real.customerSocket);

    // Every flooder is first refused for its volume: messages without an ack beyond its burst.
    for (const socket of flooders) for (let i = 0; i < 70; i++) socket.emit('noise', i);
    await Promise.all(flooders.map((s) => ok(s, 'heartbeat').catch(() => undefined)));
    // The bucket refills (20 a second) within its flooding time (10 s).
    await new Promise((r) => setTimeout(r, 1000));

    let peakPending = 0;
    let peakUsed = 0;
    const sampler = setInterval(() => {
      peakPending = Math.max(peakPending, pool.numPendingAcquires());
      peakUsed = Math.max(peakUsed, pool.numUsed());
    }, 2);
    let answered = 0;
    let refused = 0;
    const floods = flooders.map(async (socket, f) => {
      for (let i = 0; i < CHATS_EACH; i++) {
        const ack = await ask(socket, 'chat.send', { text: `flood ${f}.${i}` });
        if (ack.ok) answered++;
        else refused++;
      }
    });
    // Once the flood's requests wait, the real call's clerk writes.
    while (server.hub.gate.waiting < flooders.length / 2 && answered + refused < flooders.length * CHATS_EACH) await new Promise((r) => setImmediate(r));
    const waitingThen = server.hub.gate.waiting;
    const answeredBefore = answered;
    const mine = await ask(real.clerkSocket, 'chat.send', { text: 'Can you hear me?' });
    const overtaking = answered - answeredBefore;
    await Promise.all(floods);
    clearInterval(sampler);

    console.log(`      ${answered} flood chats answered, ${refused} refused; pool: at most ${peakUsed} in use, ${peakPending} waiting; the real chat found ${waitingThen} waiting, ${overtaking} answered before it`);
    assert.equal(mine.ok, true, `the real call's chat is answered: ${JSON.stringify(mine)}`);
    assert.ok(answered > flooders.length * CHATS_EACH / 2, 'the flood\'s valid chat is served');
    assert.ok(waitingThen >= flooders.length / 2, 'the real chat came while the flood waited');
    // Before the gate about one request per flooding connection waited there (19 of 20); now only the
    // hub's own other work (its sweep, the refusals' audit rows) may wait for a moment.
    assert.ok(peakPending <= 3, `${peakPending} requests waited in the pool's own queue`);
    assert.ok(peakUsed < 5, `the module requests leave the pool room for others: ${peakUsed} of 5 in use`);
    // Those already running when it came, and those the other place served meanwhile: not the queue.
    assert.ok(overtaking <= 2 * server.hub.gate.size + 1, `${overtaking} flood requests overtook the calm call's chat`);
  });
});
