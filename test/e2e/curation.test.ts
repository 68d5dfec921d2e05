import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { PASSWORD, seedOrganisation, seedUser, type SeededUser } from '../support/accounts';
import { assertFlowing, clerkStartsCall, launchBrowser } from '../support/browser';
import { startCallServer, type CallServer } from '../support/call-server';
import { useTestDatabase } from '../support/database';
import { imageRow, png } from '../support/images';

/** The little of the DOM these checks use (the tests compile without the DOM library). */
interface Node { textContent: string | null; querySelector(selector: string): Node | null }
interface Doc { querySelectorAll(selector: string): ArrayLike<Node> & Iterable<Node>; querySelector(selector: string): Node | null }

const NOTE = 'Free of charge for students.\n<script>window.__pwned = 1</script>';
const XSS_NAME = 'Credit card <img src=x onerror="window.__pwned=1">';

/** Fails the test on any dialog (an injected alert) or script error on the page. */
function watch(page: Page, problems: string[]): void {
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
}

/**
 * Curation end to end: two real browsers in a real call. The clerk
 * searches the catalog, shows two products, annotates one and withdraws
 * the other; the customer sees exactly the remaining card with the note,
 * marks it favourite; the clerk sees that; after the call the customer's
 * summary shows it. Names and notes carrying markup stay text.
 */
describe('curating products in a call (two real browsers)', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let server: CallServer;
  let clerkBrowser: Browser;
  let customerBrowser: Browser;
  let clerkPage: Page;
  let customerPage: Page;
  let clerk: SeededUser;
  let link: string;
  let callId: string;
  const problems: string[] = [];

  before(async () => {
    server = await startCallServer(db.current, { graceMs: 3000 });
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, 'Curation Bank');
    clerk = await seedUser(knex, org, 'clerk', { name: 'Clara Clerk' });
    const [account] = await knex('products')
      .insert([
        { organisation_id: org.id, sku: 'ACC-1', name: 'Student account', description: 'A current account for students', price_cents: 0, currency: 'EUR', product_url: 'https://bank.example/student', category: 'Accounts' },
        { organisation_id: org.id, sku: 'CC-GOLD', name: XSS_NAME, description: 'Gold card', price_cents: 4900, currency: 'EUR', category: 'Cards' },
        { organisation_id: org.id, sku: 'LOAN-1', name: 'Student loan', price_cents: 0, currency: 'EUR', category: 'Loans' },
      ])
      .returning('id');
    await knex('product_images').insert(imageRow(org.id, account!.id, png(120, { green: 200 })));
    [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
  });

  after(async () => {
    await Promise.allSettled([clerkBrowser?.close(), customerBrowser?.close()]);
    await server?.close();
  });

  const card = (page: Page, name: string) => page.locator('#cards li.card', { has: page.locator('.card-name', { hasText: name }) });

  it('clerk and customer are in a call with media flowing', async () => {
    clerkPage = await clerkBrowser.newPage();
    watch(clerkPage, problems);
    link = await clerkStartsCall(clerkPage, server.url, clerk, PASSWORD);
    callId = (await clerkPage.getAttribute('[data-call-id]', 'data-call-id'))!;
    await clerkPage.click('#join');
    customerPage = await customerBrowser.newPage();
    watch(customerPage, problems);
    await customerPage.goto(link);
    await customerPage.click('#join');
    await assertFlowing(customerPage);
    assert.equal(await customerPage.isVisible('#cards-empty'), true);
  });

  it('the clerk searches as they type and shows two products', async () => {
    await clerkPage.fill('#catalog-search', 'studen');
    await clerkPage.waitForFunction(() => {
      const names = [...(globalThis as unknown as { document: Doc }).document.querySelectorAll('#catalog-results .catalog-result strong')].map((n) => n.textContent);
      return names.length === 2 && names.includes('Student account') && names.includes('Student loan');
    });
    // The category filter narrows the same query.
    await clerkPage.selectOption('#catalog-category', 'Accounts');
    await clerkPage.waitForFunction(() => (globalThis as unknown as { document: Doc }).document.querySelectorAll('#catalog-results .catalog-result').length === 1);
    await clerkPage.click('#catalog-results .catalog-result:has-text("Student account") button.catalog-show');
    await card(clerkPage, 'Student account').waitFor();
    assert.equal(await clerkPage.textContent('#catalog-results .catalog-result:has-text("Student account") button.catalog-show'), 'Shown');

    await clerkPage.selectOption('#catalog-category', '');
    await clerkPage.fill('#catalog-search', 'gold');
    await clerkPage.click('#catalog-results .catalog-result:has-text("Credit card") button.catalog-show');
    await card(clerkPage, 'Credit card').waitFor();
    await card(customerPage, 'Credit card').waitFor();
    assert.equal(await customerPage.locator('#cards li.card').count(), 2);
  });

  it('the clerk writes a note on one card and withdraws the other', async () => {
    const account = card(clerkPage, 'Student account');
    await account.locator('.card-note-input').fill(NOTE);
    await account.locator('.card-save-note').click();
    await account.locator('.card-note-saved', { hasText: 'Saved' }).waitFor();
    await card(clerkPage, 'Credit card').locator('.card-withdraw').click();
    await clerkPage.waitForFunction(() => (globalThis as unknown as { document: Doc }).document.querySelectorAll('#cards li.card').length === 1);
  });

  it('the customer sees exactly the remaining card, with the note as text, the image and the link', async () => {
    await customerPage.waitForFunction(() => {
      const doc = (globalThis as unknown as { document: Doc }).document;
      const cards = doc.querySelectorAll('#cards li.card');
      return cards.length === 1 && (cards[0]!.querySelector('.card-note')?.textContent ?? '').startsWith('Free of charge');
    });
    const remaining = customerPage.locator('#cards li.card');
    assert.equal(await remaining.locator('.card-name').textContent(), 'Student account');
    assert.equal(await remaining.locator('.card-note').textContent(), NOTE);
    assert.equal(await remaining.locator('.card-link').getAttribute('href'), 'https://bank.example/student');
    assert.equal(await remaining.locator('.card-link').getAttribute('rel'), 'noopener noreferrer');
    await customerPage.waitForFunction(() => ((globalThis as unknown as { document: Doc }).document.querySelector('#cards .card-image') as unknown as { naturalWidth: number } | null)?.naturalWidth === 1);
    assert.match((await remaining.locator('.card-price').textContent())!, /0[.,]00/);
  });

  it('the customer marks it favourite and asks about it; the clerk sees both', async () => {
    await customerPage.locator('#cards li.card .card-favourite').click();
    await customerPage.locator('#cards li.card .card-favourite[aria-pressed="true"]').waitFor();
    await card(clerkPage, 'Student account').locator('.badge-favourite').waitFor({ state: 'visible' });
    await customerPage.locator('#cards li.card .card-ask').click();
    await card(clerkPage, 'Student account').locator('.badge-asked').waitFor({ state: 'visible' });
    await clerkPage.locator('#chat-log .chat-message .chat-question', { hasText: 'Student account' }).waitFor();
  });

  it('chat runs both ways and shows markup as text', async () => {
    await customerPage.fill('#chat-input', 'Is it <b>really</b> free? <img src=x onerror="window.__pwned=1">');
    await customerPage.press('#chat-input', 'Enter');
    await clerkPage.locator('#chat-log .chat-body', { hasText: 'really' }).waitFor();
    assert.equal(await clerkPage.locator('#chat-log .chat-body', { hasText: 'really' }).textContent(), 'Is it <b>really</b> free? <img src=x onerror="window.__pwned=1">');
    await clerkPage.fill('#chat-input', 'Yes, for students.');
    await clerkPage.click('#chat-send');
    await customerPage.locator('#chat-log .chat-body', { hasText: 'Yes, for students.' }).waitFor();
    assert.equal(await customerPage.locator('#chat-log li').count(), 3);
  });

  it('the clerk\'s private notes are saved and never reach the customer', async () => {
    await clerkPage.fill('#private-notes', 'Wants to move the salary account next month.');
    await clerkPage.locator('#notes-status', { hasText: 'Saved.' }).waitFor({ timeout: 10000 });
    assert.equal((await db.current.knex('call_notes').where({ call_id: callId }).first())!.body, 'Wants to move the salary account next month.');
    assert.equal(await customerPage.locator('#private-notes').count(), 0);
  });

  it('nothing typed or imported ran as script', async () => {
    for (const page of [clerkPage, customerPage]) {
      assert.equal(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined);
      assert.equal(await page.locator('#curation img[src="x"]').count(), 0);
    }
    assert.deepEqual(problems, []);
  });

  it('after the call, the customer\'s link shows the summary with the card, the note and the favourite', async () => {
    await clerkPage.click('#end-call');
    await clerkPage.click('#end-call-confirm'); // End call asks first (issue 16)
    await clerkPage.waitForURL('**/dashboard');
    // The customer's page offers the summary at once; it is the same link.
    await customerPage.locator('#open-summary').click();
    await customerPage.waitForURL(link);
    const text = await customerPage.textContent('main');
    assert.ok(text!.includes('Student account'), 'the remaining card is in the summary');
    assert.ok(text!.includes('Free of charge for students.'), 'with its note');
    assert.ok(!text!.includes('Credit card'), 'the withdrawn card is not');
    assert.equal(await customerPage.locator('.summary-card.is-favourite').count(), 1, 'marked as favourite');
    assert.equal(await customerPage.locator('img[src="x"]').count(), 0);
    assert.equal(await customerPage.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined);
  });
});
