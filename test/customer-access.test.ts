import assert from 'node:assert/strict';
import { customerAccess, joinAccess } from '../app/calls/customer-access';
import type { Call } from '../app/calls/service';

const NOW = new Date('2026-12-01T12:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function call(changes: Partial<Call>): Call {
  return {
    id: 'c1', organisationId: 'o1', clerkId: 'u1', status: 'waiting', createdAt: new Date(NOW.getTime() - HOUR), startedAt: null, endedAt: null, endReason: null,
    guestTokenExpiresAt: new Date(NOW.getTime() + HOUR), reference: null, scheduledAt: null, linkRevokedAt: null, ...changes,
  };
}

/** What the token opens, given the call it belongs to (or none). */
function opens(found: Call | undefined, summaryDays = 14) {
  return customerAccess({ byCustomerToken: async () => found }, 'token', summaryDays, NOW);
}

describe('what a customer link opens (one loader for the call page, the summary and the signalling)', () => {
  const ended = (daysAgo: number, changes: Partial<Call> = {}) => call({ status: 'ended', endedAt: new Date(NOW.getTime() - daysAgo * DAY), ...changes });

  it('tells each state apart', async () => {
    assert.equal((await opens(call({}))).outcome, 'open');
    assert.equal((await opens(call({ status: 'active' }))).outcome, 'open');
    assert.deepEqual(await opens(undefined), { outcome: 'unknown' });
    assert.deepEqual(await opens(call({ guestTokenExpiresAt: new Date(NOW.getTime() - 1) })), { outcome: 'expired', organisationId: 'o1' });
    assert.deepEqual(await opens(call({ guestTokenExpiresAt: null })), { outcome: 'expired', organisationId: 'o1' });
    assert.deepEqual(await opens(call({ linkRevokedAt: NOW })), { outcome: 'revoked', ended: false, organisationId: 'o1' });
    assert.deepEqual(await opens(ended(1, { linkRevokedAt: NOW })), { outcome: 'revoked', ended: true, organisationId: 'o1' });
    assert.equal((await opens(ended(13))).outcome, 'summary');
    // The link's own expiry is for joining; the summary counts from the call's end.
    assert.equal((await opens(ended(1, { guestTokenExpiresAt: new Date(NOW.getTime() - DAY) }))).outcome, 'summary');
    assert.deepEqual(await opens(ended(15)), { outcome: 'ended', organisationId: 'o1' });
    assert.deepEqual(await opens(ended(1), 0), { outcome: 'ended', organisationId: 'o1' });
    assert.deepEqual(await opens(call({ status: 'ended', endedAt: null })), { outcome: 'ended', organisationId: 'o1' });
  });

  it('the signalling admits only an open call: any ended call is call_ended, the rest token_invalid', async () => {
    assert.ok('call' in joinAccess(await opens(call({}))));
    for (const found of [ended(1), ended(30), ended(1, { linkRevokedAt: NOW })]) assert.deepEqual(joinAccess(await opens(found)), { error: 'call_ended' });
    for (const found of [undefined, call({ linkRevokedAt: NOW }), call({ guestTokenExpiresAt: new Date(NOW.getTime() - 1) })]) assert.deepEqual(joinAccess(await opens(found)), { error: 'token_invalid' });
  });
});
