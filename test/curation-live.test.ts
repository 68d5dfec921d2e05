import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import type { Card, ChatMessage } from '../app/calls/protocol';
import { CallService } from '../app/calls/service';
import { CallRefusal } from '../app/calls/refusal';
import { CurationService } from '../app/curation/service';
import { seedOrganisation, seedUser, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { useTestDatabase } from './support/database';
import { ok, openCall, refusedCode as refused, sessionCookie } from './support/signal-client';

/** The next event of that name (after `action` ran). */
function next<T>(socket: Socket, event: string, match: (data: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} event`)), 10000);
    const handler = (data: T) => {
      if (!match(data)) return;
      clearTimeout(timer);
      socket.off(event, handler);
      resolve(data);
    };
    socket.on(event, handler);
  });
}

describe('curation and chat in a call (signalling, real server)', () => {
  const db = useTestDatabase();
  let server: CallServer;
  let clerk: SeededUser;
  let clerkSocket: Socket;
  let customerSocket: Socket;
  let callId: string;
  const products: Record<string, string> = {};

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 300 });
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, 'Curation Bank');
    const other = await seedOrganisation(knex, 'Other Bank');
    clerk = await seedUser(knex, org, 'clerk');
    const rows = await knex('products')
      .insert([
        { organisation_id: org.id, sku: 'ACC-1', name: 'Current account', price_cents: 500, currency: 'EUR', product_url: 'https://bank.example/account' },
        { organisation_id: org.id, sku: 'CARD-1', name: 'Credit card <b>Gold</b>', price_cents: 2999, currency: 'EUR' },
        { organisation_id: org.id, sku: 'OLD-1', name: 'Old product', price_cents: 100, currency: 'EUR', active: false },
        { organisation_id: other.id, sku: 'ACC-1', name: 'Foreign account', price_cents: 100, currency: 'EUR' },
      ])
      .returning(['id', 'sku', 'organisation_id']);
    for (const row of rows) products[row.organisation_id === org.id ? row.sku : `other:${row.sku}`] = row.id;

    ({ callId, clerkSocket, customerSocket } = await openCall(knex, server.url, clerk, await sessionCookie(server.url, clerk)));
  });

  after(async () => {
    clerkSocket?.close();
    customerSocket?.close();
    await server?.close();
  });

  let account: Card;
  let creditCard: Card;

  it('the clerk shows two products; the customer gets each card at once', async () => {
    const seen = next<{ cards: Card[] }>(customerSocket, 'curation.cards', (d) => d.cards.length === 1);
    ({ card: account } = await ok<{ card: Card }>(clerkSocket, 'curation.show', { productId: products['ACC-1'] }));
    assert.deepEqual((await seen).cards.map((c) => c.name), ['Current account']);
    assert.equal(account.priceCents, 500);
    assert.equal(account.url, 'https://bank.example/account');

    const both = next<{ cards: Card[] }>(customerSocket, 'curation.cards', (d) => d.cards.length === 2);
    ({ card: creditCard } = await ok<{ card: Card }>(clerkSocket, 'curation.show', { productId: products['CARD-1'], note: 'No fee in the first year' }));
    const { cards } = await both;
    assert.deepEqual(cards.map((c) => [c.name, c.position, c.note]), [['Current account', 0, ''], ['Credit card <b>Gold</b>', 1, 'No fee in the first year']]);
  });

  it('showing the same product again keeps one card', async () => {
    const { card } = await ok<{ card: Card }>(clerkSocket, 'curation.show', { productId: products['ACC-1'] });
    assert.equal(card.id, account.id);
    assert.equal(await db.current.knex('call_items').where({ call_id: callId }).count({ n: '*' }).first().then((r) => Number(r!.n)), 2);
  });

  it('refuses inactive products, other organisations\' products, and the customer showing anything', async () => {
    assert.equal(await refused(clerkSocket, 'curation.show', { productId: products['OLD-1'] }), 'not_found');
    assert.equal(await refused(clerkSocket, 'curation.show', { productId: products['other:ACC-1'] }), 'not_found');
    assert.equal(await refused(clerkSocket, 'curation.show', { productId: 'not-a-uuid' }), 'invalid_message');
    assert.equal(await refused(customerSocket, 'curation.show', { productId: products['ACC-1'] }), 'forbidden');
    assert.equal(await refused(customerSocket, 'curation.withdraw', { itemId: account.id }), 'forbidden');
    assert.equal(await refused(customerSocket, 'curation.note', { itemId: account.id, note: 'x' }), 'forbidden');
    assert.equal(await refused(customerSocket, 'notes.save', { text: 'x' }), 'forbidden');
    assert.equal(await refused(clerkSocket, 'curation.favourite', { itemId: account.id, favourite: true }), 'forbidden');
  });

  it('the clerk annotates and reorders; a wrong set of ids changes nothing', async () => {
    const noted = next<{ cards: Card[] }>(customerSocket, 'curation.cards', (d) => d.cards.some((c) => c.note.includes('Ideal')));
    await ok(clerkSocket, 'curation.note', { itemId: account.id, note: '  Ideal for you\n<script>alert(1)</script>  ' });
    assert.equal((await noted).cards.find((c) => c.id === account.id)!.note, 'Ideal for you\n<script>alert(1)</script>');

    assert.equal(await refused(clerkSocket, 'curation.reorder', { itemIds: [creditCard.id] }), 'invalid_message');
    assert.equal(await refused(clerkSocket, 'curation.reorder', { itemIds: [creditCard.id, creditCard.id] }), 'invalid_message');
    const reordered = next<{ cards: Card[] }>(customerSocket, 'curation.cards', (d) => d.cards[0]?.id === creditCard.id);
    await ok(clerkSocket, 'curation.reorder', { itemIds: [creditCard.id, account.id] });
    assert.deepEqual((await reordered).cards.map((c) => c.position), [0, 1]);
  });

  it('the customer marks a favourite and asks about a card; the clerk sees both live', async () => {
    const favourite = next<{ cards: Card[] }>(clerkSocket, 'curation.cards', (d) => d.cards.some((c) => c.favourite));
    await ok(customerSocket, 'curation.favourite', { itemId: account.id, favourite: true });
    assert.equal((await favourite).cards.find((c) => c.favourite)!.id, account.id);

    const question = next<ChatMessage>(clerkSocket, 'chat.message', (m) => m.kind === 'question');
    const asked = next<{ cards: Card[] }>(clerkSocket, 'curation.cards', (d) => d.cards.some((c) => c.asked));
    await ok(customerSocket, 'curation.ask', { itemId: creditCard.id });
    const message = await question;
    assert.equal(message.from, 'customer');
    assert.equal(message.itemId, creditCard.id);
    assert.equal(message.itemName, 'Credit card <b>Gold</b>');
    assert.equal((await asked).cards.find((c) => c.asked)!.id, creditCard.id);
  });

  it('the clerk withdraws a card: the customer has exactly the other one left', async () => {
    const left = next<{ cards: Card[] }>(customerSocket, 'curation.cards', (d) => d.cards.length === 1);
    await ok(clerkSocket, 'curation.withdraw', { itemId: creditCard.id });
    const { cards } = await left;
    assert.deepEqual(cards.map((c) => [c.id, c.position, c.favourite]), [[account.id, 0, true]]);
    assert.equal(await refused(clerkSocket, 'curation.withdraw', { itemId: creditCard.id }), 'not_found');
    assert.equal(await refused(customerSocket, 'curation.favourite', { itemId: creditCard.id, favourite: true }), 'not_found');
  });

  it('chat: both sides get each message, stored as typed; empty or oversized ones are refused', async () => {
    const atCustomer = next<ChatMessage>(customerSocket, 'chat.message', (m) => m.kind === 'text');
    const { message } = await ok<{ message: ChatMessage }>(clerkSocket, 'chat.send', { text: 'Hello <img src=x onerror=alert(1)>' });
    assert.equal(message.from, 'clerk');
    assert.deepEqual(await atCustomer, message);
    const atClerk = next<ChatMessage>(clerkSocket, 'chat.message', (m) => m.from === 'customer' && m.kind === 'text');
    await ok(customerSocket, 'chat.send', { text: 'Thanks!' });
    assert.equal((await atClerk).body, 'Thanks!');

    assert.equal(await refused(customerSocket, 'chat.send', { text: '   ' }), 'invalid_message');
    assert.equal(await refused(customerSocket, 'chat.send', { text: 'x'.repeat(2001) }), 'invalid_message');
    assert.equal(await refused(customerSocket, 'chat.send', { text: 'hi', extra: 1 }), 'invalid_message');
    const stored = await db.current.knex('call_messages').where({ call_id: callId }).orderBy('created_at');
    assert.deepEqual(stored.map((m) => [m.sender, m.kind, m.body]), [
      ['customer', 'question', ''],
      ['clerk', 'text', 'Hello <img src=x onerror=alert(1)>'],
      ['customer', 'text', 'Thanks!'],
    ]);
  });

  it('private notes are the clerk\'s only: saved, and synced to the clerk but never to the customer', async () => {
    await ok(clerkSocket, 'notes.save', { text: 'Customer considers moving their salary account.' });
    const clerkState = await ok<{ cards: Card[]; messages: ChatMessage[]; notes?: string }>(clerkSocket, 'curation.sync');
    assert.equal(clerkState.notes, 'Customer considers moving their salary account.');
    const customerState = await ok<{ cards: Card[]; messages: ChatMessage[]; notes?: string }>(customerSocket, 'curation.sync');
    assert.equal(customerState.notes, undefined);
    assert.deepEqual(customerState.cards.map((c) => c.id), [account.id]);
    assert.equal(customerState.messages.length, 3);
  });

  it('a call at its message limit refuses more', async () => {
    const knex = db.current.knex;
    const organisationId = clerk.organisationId;
    await knex('call_messages').insert(Array.from({ length: 997 }, (_, i) => ({ organisation_id: organisationId, call_id: callId, sender: 'clerk', kind: 'text', body: `filler ${i}` })));
    assert.equal(await refused(customerSocket, 'chat.send', { text: 'one more' }), 'limit_reached');
    await knex('call_messages').where({ call_id: callId }).where('body', 'like', 'filler %').delete();
  });

  it('after the call ended nothing can change', async () => {
    await new CallService(db.current.knex).end(callId, 'test', { type: 'system' } as never);
    const service = new CurationService(db.current.knex);
    const ref = { callId, organisationId: clerk.organisationId };
    await assert.rejects(service.send(ref, { role: 'customer' }, 'late'), (err: unknown) => err instanceof CallRefusal && err.code === 'call_ended');
    await assert.rejects(service.show(ref, products['ACC-1']!), (err: unknown) => err instanceof CallRefusal && err.code === 'call_ended');
    // Another organisation cannot reach this call's cards at all.
    await assert.rejects(service.withdraw({ callId, organisationId: (await db.current.knex('organisations').where({ name: 'Other Bank' }).first())!.id }, account.id), (err: unknown) => err instanceof CallRefusal && err.code === 'not_found');
  });
});
