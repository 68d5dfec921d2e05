import assert from 'node:assert/strict';
import type { Express } from 'express';
import type { Knex } from 'knex';
import request from 'supertest';
import { auditActions, SYSTEM, type Actor } from '../app/audit/actions';
import { AuditService, type AuditEventInput } from '../app/audit/service';
import { actionGroups, actionKey } from '../app/compliance/routes';
import { catalogKeys } from '../app/i18n';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/** Markers put into events' details, so a page can be searched for exactly the events it shows. */
const ALPHA = 'EV-ALPHA';
const BRAVO = 'EV-BRAVO';
const CHARLIE = 'EV-CHARLIE';
const FOREIGN = 'EV-FOREIGN';
const ALL = [ALPHA, BRAVO, CHARLIE, FOREIGN];

const ALICE_ID = '00000000-0000-4000-8000-00000000a11c';

function alice(organisationId: string): Actor {
  return { type: 'user', id: ALICE_ID, label: 'alice@bank.example', organisationId };
}

/** Records one event as if it happened at `at`. */
async function recordAt(knex: Knex, at: string, event: AuditEventInput): Promise<void> {
  await new AuditService(knex, () => new Date(at)).record(event);
}

/** The markers among `ALL` that a page shows. */
function markers(html: string): string[] {
  return ALL.filter((m) => html.includes(m));
}

/** The `n` of each `{"n":…}` details cell, in page order. */
function numbers(html: string): number[] {
  return [...html.matchAll(/\{&#34;n&#34;:(\d+)\}/g)].map((m) => Number(m[1]));
}

function assertNoInlineCode(html: string): void {
  assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/i, 'no inline <script>');
  assert.doesNotMatch(html, /<style/i, 'no <style> element');
  assert.doesNotMatch(html, /<[^>]*\sstyle=/i, 'no style attribute');
  assert.doesNotMatch(html, /<[^>]*\son[a-z]+=/i, 'no inline event handler');
}

describe('compliance: audit trail pages', () => {
  const db = useTestDatabase();
  let app: Express;
  let org: SeededOrganisation;
  let compliance: Browser;
  let admin: Browser;
  let clerk: Browser;
  let foreignAdmin: Browser;

  before(async () => {
    const knex = db.current.knex;
    app = buildApp(db.current);
    org = await seedOrganisation(knex, 'Audit Bank');
    const other = await seedOrganisation(knex, 'Foreign Insurer');
    compliance = await signIn(app, await seedUser(knex, org, 'compliance'));
    admin = await signIn(app, await seedUser(knex, org, 'admin'));
    clerk = await signIn(app, await seedUser(knex, org, 'clerk'));
    foreignAdmin = await signIn(app, await seedUser(knex, other, 'admin'));

    await recordAt(knex, '2020-03-01T10:00:00Z', {
      organisationId: org.id, actor: alice(org.id), action: 'user.role_changed', target: { type: 'user', id: 'u-1' }, ip: '203.0.113.7', details: { marker: ALPHA, from: 'clerk', to: 'admin' },
    });
    await recordAt(knex, '2020-03-02T23:59:59.999Z', {
      organisationId: org.id, actor: { type: 'guest', label: 'mallory@evil.example' }, action: 'auth.login_failed', ip: '198.51.100.9', details: { marker: BRAVO, reason: 'bad_password' },
    });
    await recordAt(knex, '2020-03-03T00:00:00Z', { organisationId: org.id, actor: SYSTEM, action: 'organisation.branding_changed', details: { marker: CHARLIE } });
    await recordAt(knex, '2020-03-01T11:00:00Z', {
      organisationId: other.id, actor: alice(other.id), action: 'user.role_changed', target: { type: 'user', id: 'u-2' }, details: { marker: FOREIGN },
    });
  });

  describe('access', () => {
    it('a compliance user sees the organisation\'s events, and only those', async () => {
      const res = await compliance.agent.get('/compliance/audit').expect(200);
      assert.deepEqual(markers(res.text), [ALPHA, BRAVO, CHARLIE]);
      assert.match(res.text, /alice@bank\.example/);
      assert.match(res.text, /Role changed/);
      assert.match(res.text, /<code>user\.role_changed<\/code>/);
      assert.match(res.text, /203\.0\.113\.7/);
      assert.match(res.text, /<time datetime="2020-03-01T10:00:00.000Z">/);
      assert.doesNotMatch(res.text, /u-2/);
    });

    it('an admin sees the organisation\'s events too', async () => {
      const res = await admin.agent.get('/compliance/audit').expect(200);
      assert.deepEqual(markers(res.text), [ALPHA, BRAVO, CHARLIE]);
    });

    it('another organisation\'s admin never sees them', async () => {
      const res = await foreignAdmin.agent.get('/compliance/audit').expect(200);
      assert.deepEqual(markers(res.text), [FOREIGN]);
      const filtered = await foreignAdmin.agent.get('/compliance/audit?action=user.role_changed&actor=alice').expect(200);
      assert.deepEqual(markers(filtered.text), [FOREIGN]);
    });

    it('a clerk is refused', async () => {
      await clerk.agent.get('/compliance/audit').expect(403);
      await clerk.agent.get('/compliance/audit/verify').expect(403);
    });

    it('anonymous visitors are sent to sign in', async () => {
      for (const path of ['/compliance/audit', '/compliance/audit/verify']) {
        await request(app).get(path).set('Accept', 'text/html').expect(303).expect('Location', `/login?return=${encodeURIComponent(path)}`);
      }
    });

    it('lists events newest first, with the total count', async () => {
      const res = await compliance.agent.get('/compliance/audit?to=2020-12-31').expect(200);
      assert.ok(res.text.indexOf(CHARLIE) < res.text.indexOf(BRAVO) && res.text.indexOf(BRAVO) < res.text.indexOf(ALPHA));
      assert.match(res.text, /<strong>3 events<\/strong>/);
    });
  });

  describe('filters', () => {
    it('by action', async () => {
      const res = await compliance.agent.get('/compliance/audit?action=user.role_changed').expect(200);
      assert.deepEqual(markers(res.text), [ALPHA]);
      assert.match(res.text, /<option value="user.role_changed" selected>/);
    });

    it('by action group', async () => {
      const res = await compliance.agent.get('/compliance/audit?action=auth').expect(200);
      assert.deepEqual(markers(res.text), [BRAVO]);
      assert.match(res.text, /auth\.login_succeeded/, 'the sign-ins of the test users are auth events too');
    });

    it('by actor: part of the label, any case, or the exact id', async () => {
      const byLabel = await compliance.agent.get('/compliance/audit?actor=MALLORY').expect(200);
      assert.deepEqual(markers(byLabel.text), [BRAVO]);
      assert.match(byLabel.text, /value="MALLORY"/);
      const byId = await compliance.agent.get(`/compliance/audit?actor=${ALICE_ID}`).expect(200);
      assert.deepEqual(markers(byId.text), [ALPHA]);
    });

    it('by actor: wildcard characters are taken literally', async () => {
      const res = await compliance.agent.get('/compliance/audit?actor=%25').expect(200);
      assert.deepEqual(markers(res.text), []);
      assert.match(res.text, /No events match these filters/);
    });

    it('by time range: whole UTC days, the end day included', async () => {
      const oneDay = await compliance.agent.get('/compliance/audit?from=2020-03-02&to=2020-03-02').expect(200);
      assert.deepEqual(markers(oneDay.text), [BRAVO]);
      const fromOnly = await compliance.agent.get('/compliance/audit?from=2020-03-01&to=2020-03-03').expect(200);
      assert.deepEqual(markers(fromOnly.text), [ALPHA, BRAVO, CHARLIE]);
      const until = await compliance.agent.get('/compliance/audit?to=2020-03-01').expect(200);
      assert.deepEqual(markers(until.text), [ALPHA]);
    });

    it('combines filters; empty fields count as absent', async () => {
      const res = await compliance.agent.get('/compliance/audit?from=2020-03-01&to=&actor=alice&action=user&page=').expect(200);
      assert.deepEqual(markers(res.text), [ALPHA]);
    });

    it('accepts the widest date range', async () => {
      const res = await compliance.agent.get('/compliance/audit?from=1900-01-01&to=9999-12-31').expect(200);
      assert.deepEqual(markers(res.text), [ALPHA, BRAVO, CHARLIE]);
    });

    const bad: [string, string, RegExp][] = [
      ['from=2020-02-30', 'from', /valid date as YYYY-MM-DD/],
      ['from=yesterday', 'from', /valid date as YYYY-MM-DD/],
      ['to=0000-01-01', 'to', /valid date as YYYY-MM-DD/],
      ['from=2020-03-02&to=2020-03-01', 'to', /must not be before the start date/],
      ['action=nope', 'action', /choose an action from the list/],
      ['action=auth.%25', 'action', /choose an action from the list/],
      ['action=auth&action=user', 'action', /choose an action from the list/],
      [`actor=${'x'.repeat(201)}`, 'actor', /too long/],
    ];
    for (const [query, field, message] of bad) {
      it(`refuses ${query.slice(0, 40)} with 400 and a message at the field`, async () => {
        const res = await compliance.agent.get(`/compliance/audit?${query}`).expect(400);
        assert.match(res.text, message);
        assert.match(res.text, new RegExp(`id="f-${field}"[^>]*aria-invalid="true"`));
        assert.match(res.text, /Please correct the marked filter values/);
        assert.deepEqual(markers(res.text), [], 'no events are listed');
      });
    }

    for (const page of ['0', '-1', 'abc', '1.5', '9999999', '2&page=3']) {
      it(`refuses page=${page} with 400`, async () => {
        const res = await compliance.agent.get(`/compliance/audit?page=${page}`).expect(400);
        assert.match(res.text, /The page number is not valid/);
      });
    }

    it('answers a bad filter in the user\'s language, keeping what was typed', async () => {
      const res = await compliance.agent.get('/compliance/audit?from=2020-02-30&actor=bob').set('Accept-Language', 'de').expect(400);
      assert.match(res.text, /Bitte geben Sie ein gültiges Datum im Format JJJJ-MM-TT ein/);
      assert.match(res.text, /value="2020-02-30"/);
      assert.match(res.text, /value="bob"/);
    });
  });

  describe('paging', () => {
    let pager: Browser;

    before(async () => {
      const knex = db.current.knex;
      const paged = await seedOrganisation(knex, 'Paging Org');
      pager = await signIn(app, await seedUser(knex, paged, 'compliance'));
      const start = Date.parse('2021-01-01T00:00:00Z');
      for (let n = 0; n < 120; n++) {
        await recordAt(knex, new Date(start + n * 1000).toISOString(), { organisationId: paged.id, actor: SYSTEM, action: 'organisation.updated', details: { n } });
      }
    });

    it('shows 50 events per page: 120 events make 3 pages', async () => {
      const first = await pager.agent.get('/compliance/audit?action=organisation.updated').expect(200);
      assert.match(first.text, /<strong>120 events<\/strong>/);
      assert.match(first.text, /Page 1 of 3/);
      assert.deepEqual(numbers(first.text), Array.from({ length: 50 }, (_, i) => 119 - i));
      const last = await pager.agent.get('/compliance/audit?action=organisation.updated&page=3').expect(200);
      assert.deepEqual(numbers(last.text), Array.from({ length: 20 }, (_, i) => 19 - i));
      assert.doesNotMatch(last.text, /rel="next"/);
    });

    it('page 2 shows the second slice, with links that keep the filters', async () => {
      const res = await pager.agent.get('/compliance/audit?action=organisation.updated&page=2').expect(200);
      assert.deepEqual(numbers(res.text), Array.from({ length: 50 }, (_, i) => 69 - i));
      assert.match(res.text, /Showing 51–100/);
      assert.match(res.text, /href="\/compliance\/audit\?action=organisation.updated" rel="prev"/);
      assert.match(res.text, /href="\/compliance\/audit\?action=organisation.updated&amp;page=3" rel="next"/);
    });

    it('paging links keep every filter', async () => {
      const res = await pager.agent.get('/compliance/audit?from=2021-01-01&to=2021-01-01&actor=vclerk&action=organisation').expect(200);
      assert.match(res.text, /href="\/compliance\/audit\?from=2021-01-01&amp;to=2021-01-01&amp;actor=vclerk&amp;action=organisation&amp;page=2" rel="next"/);
    });

    it('a page past the end is empty and links back', async () => {
      const res = await pager.agent.get('/compliance/audit?action=organisation.updated&page=9').expect(200);
      assert.deepEqual(numbers(res.text), []);
      assert.match(res.text, /There are no events on this page/);
      assert.match(res.text, /href="\/compliance\/audit\?action=organisation.updated&amp;page=3" rel="prev"/);
    });

    it('the list page has no inline script or style', async () => {
      for (const lang of ['en', 'de']) {
        const res = await pager.agent.get('/compliance/audit?page=2').set('Accept-Language', lang).expect(200);
        assertNoInlineCode(res.text);
        assert.match(res.text, /<figure>\s*<table class="striped">\s*<caption>/);
        assert.match(res.text, /<th scope="col">/);
      }
    });
  });

  describe('verification', () => {
    let auditor: Browser;
    let orgId: string;

    before(async () => {
      const knex = db.current.knex;
      const tampered = await seedOrganisation(knex, 'Tamper Org');
      orgId = tampered.id;
      auditor = await signIn(app, await seedUser(knex, tampered, 'compliance'));
      for (let n = 0; n < 4; n++) await new AuditService(knex).record({ organisationId: orgId, actor: SYSTEM, action: 'organisation.updated', details: { n } });
    });

    it('reports an intact chain with its length and head hash', async () => {
      const rows = await db.current.knex('audit_events').where({ chain: orgId }).orderBy('seq');
      const res = await auditor.agent.get('/compliance/audit/verify').expect(200);
      assert.match(res.text, /The audit trail is intact/);
      assert.match(res.text, new RegExp(`<dd>${rows.length}</dd>`));
      assert.match(res.text, new RegExp(`<code>${rows.at(-1)!.hash}</code>`));
      assertNoInlineCode(res.text);
    });

    it('names the first broken event after tampering', async () => {
      const knex = db.current.knex;
      const victim = await knex('audit_events').where({ chain: orgId, action: 'organisation.updated' }).orderBy('seq').offset(1).first();
      await knex.transaction(async (trx) => {
        await trx.raw('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete');
        await trx('audit_events').where({ id: victim!.id }).update({ details: JSON.stringify({ n: 'forged' }) });
        await trx.raw('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete');
      });
      const res = await auditor.agent.get('/compliance/audit/verify').expect(200);
      assert.match(res.text, /has been tampered with/);
      assert.match(res.text, new RegExp(`<code>${victim!.id}</code>`));
      assert.match(res.text, new RegExp(`<dd>${victim!.seq}</dd>`));
      assert.match(res.text, /content was changed after it was recorded/);
      const de = await auditor.agent.get('/compliance/audit/verify').set('Accept-Language', 'de').expect(200);
      assert.match(de.text, /wurde nach der Aufzeichnung verändert/);
    });

    it('other organisations\' chains stay intact', async () => {
      const res = await compliance.agent.get('/compliance/audit/verify').expect(200);
      assert.match(res.text, /The audit trail is intact/);
    });
  });

  describe('escaping', () => {
    it('renders markup in event fields as inert text', async () => {
      const knex = db.current.knex;
      const evil = await seedOrganisation(knex, 'Escape Org');
      const viewer = await signIn(app, await seedUser(knex, evil, 'compliance'));
      await new AuditService(knex).record({
        organisationId: evil.id,
        actor: { type: 'guest', label: '<img src=x onerror=alert(2)>' },
        action: 'security.csrf_rejected',
        target: { type: '<b>kind</b>', id: '<i>id</i>' },
        ip: '<u>ip</u>',
        details: { note: '<script>alert(1)</script>', quote: '"><svg onload=alert(3)>' },
      });
      const res = await viewer.agent.get('/compliance/audit').expect(200);
      assert.match(res.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
      assert.match(res.text, /&lt;img src=x onerror=alert\(2\)&gt;/);
      assert.match(res.text, /&lt;b&gt;kind&lt;\/b&gt;/);
      assert.doesNotMatch(res.text, /<script>alert|<img src=x|<svg|<b>kind|<i>id|<u>ip/);
      assertNoInlineCode(res.text);
    });
  });

  describe('catalogs', () => {
    it('every action, action group, actor type and chain-break reason has a label in both languages', () => {
      const needed = [
        ...auditActions.map(actionKey),
        ...actionGroups.map((g) => `compliance.groups.${g}`),
        ...['user', 'api_key', 'guest', 'system'].map((a) => `compliance.actor_types.${a}`),
        ...['sequence_gap', 'prev_hash_mismatch', 'hash_mismatch'].map((r) => `compliance.reasons.${r}`),
      ];
      for (const lang of ['en', 'de'] as const) {
        const keys = new Set(catalogKeys(lang));
        assert.deepEqual(needed.filter((k) => !keys.has(k)), [], lang);
      }
    });
  });
});
