import assert from 'node:assert/strict';
import request from 'supertest';
import { seedOrganisation, seedUser, signIn, type Browser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/** The element with this id, its attributes and its text (tags removed). */
function element(html: string, id: string): { attributes: string; text: string } | null {
  const match = new RegExp(`<([a-z]+)\\b([^>]*\\bid="${id}"[^>]*)>([\\s\\S]*?)</\\1>`).exec(html);
  if (!match) return null;
  return { attributes: match[2]!, text: match[3]!.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').replace(/&#39;/g, "'").trim() };
}

const isHidden = (attributes: string) => /\shidden(\s|=|$)/.test(attributes);

/**
 * The privacy statements of the call pages say what is true: the customer's
 * note follows the recording state (two prepared variants, switched by the
 * client), and the clerk's notes hint says the notes go into an access
 * request's copy (app/requests/access-zip.ts puts them in notes.json).
 */
describe('call pages: privacy texts that match what is kept', () => {
  const db = useTestDatabase();
  let app: ReturnType<typeof buildApp>;
  let clerk: Browser;
  let orgId: string;

  before(async () => {
    app = buildApp(db.current);
    const org = await seedOrganisation(db.current.knex, 'Truthful Bank');
    orgId = org.id;
    clerk = await signIn(app, await seedUser(db.current.knex, org, 'clerk'));
  });

  async function startCall(): Promise<{ id: string; token: string }> {
    const res = await clerk.agent.post('/calls').type('form').send({ _csrf: clerk.csrf }).expect(303);
    const match = /^\/calls\/([0-9a-f-]{36})#customer=([A-Za-z0-9_-]{43})$/.exec(res.headers.location ?? '');
    assert.ok(match);
    return { id: match[1]!, token: match[2]! };
  }

  const setMode = (mode: string) => db.current.knex('organisations').where({ id: orgId }).update({ settings: { recording: { mode } } });

  it("the clerk's notes hint names the access request and does not promise the customer never gets the notes", async () => {
    const { id } = await startCall();
    for (const [lang, pattern] of [['en', /access request/], ['de', /Auskunft/]] as const) {
      const page = await clerk.agent.get(`/calls/${id}`).set('Accept-Language', lang).expect(200);
      const hint = element(page.text, 'notes-privacy');
      assert.ok(hint, `${lang}: the notes field has a privacy hint`);
      assert.match(hint.text, pattern);
      assert.match(page.text, /aria-describedby="notes-status notes-privacy"/);
    }
    const page = await clerk.agent.get(`/calls/${id}`).set('Accept-Language', 'en').expect(200);
    assert.doesNotMatch(page.text, /customer never|Only you and your organisation see/);
    // The summary after the call says the same.
    await clerk.agent.post(`/calls/${id}/end`).type('form').send({ _csrf: clerk.csrf }).expect(303);
    const summary = await clerk.agent.get(`/calls/${id}`).set('Accept-Language', 'en').expect(200);
    const hint = element(summary.text, 'f-notes-hint');
    assert.ok(hint, 'the summary has the notes hint');
    assert.match(hint.text, /access request/);
    assert.doesNotMatch(hint.text, /never|Only you/);
  });

  it('the customer page carries both privacy notes, the recording one hidden until a recording runs', async () => {
    await setMode('on_demand');
    const { token } = await startCall();
    const page = await request(app).get(`/join/${token}`).set('Accept-Language', 'en').expect(200);
    assert.doesNotMatch(page.text, /Nothing about them is stored/);
    const unrecorded = element(page.text, 'privacy-unrecorded');
    const recording = element(page.text, 'privacy-recording');
    assert.ok(unrecorded && recording, 'both variants are on the page');
    assert.equal(isHidden(unrecorded.attributes), false, 'not recording: shown');
    assert.equal(isHidden(recording.attributes), true, 'recording: hidden until the client learns a recording runs');
    assert.match(unrecorded.text, /not being recorded/);
    assert.match(unrecorded.text, /chat/);
    assert.match(unrecorded.text, /retention/);
    assert.doesNotMatch(unrecorded.text, /[Nn]othing/);
    assert.match(recording.text, /is being recorded/);
    assert.match(recording.text, /retention/);
    const de = await request(app).get(`/join/${token}`).set('Accept-Language', 'de').expect(200);
    assert.match(element(de.text, 'privacy-unrecorded')!.text, /nicht aufgezeichnet/);
    assert.match(element(de.text, 'privacy-recording')!.text, /wird aufgezeichnet/);
    assert.doesNotMatch(de.text, /Darüber wird nichts gespeichert/);
    // The details say a recording needs consent, and what is kept includes the chat and the cards.
    assert.doesNotMatch(page.text, /This call is not recorded\./);
    assert.match(page.text, /only if you agree/);
  });

  it('without recording (policy "off") the page says the call is not recorded and has no recording variant', async () => {
    await setMode('off');
    const { token } = await startCall();
    const page = await request(app).get(`/join/${token}`).set('Accept-Language', 'en').expect(200);
    assert.ok(element(page.text, 'privacy-unrecorded'));
    assert.equal(element(page.text, 'privacy-recording'), null);
    assert.match(page.text, /This call is not recorded\./);
  });
});
