import crypto from 'node:crypto';
import type { Page } from 'playwright-core';
import type { Browser } from 'playwright-core';

/** A staff member made through the appliance's own pages, as people make them. */
export interface Staff {
  email: string;
  password: string;
  /** A page signed in as this person (admins keep theirs for later steps). */
  page: Page;
}

const strongPassword = () => `Pw-${crypto.randomBytes(12).toString('hex')}`;

/** The first-run setup form, opened from the logged link: an organisation and its administrator. */
export async function setUpOrganisation(page: Page, link: string, organisation: string): Promise<Staff> {
  const admin = { email: `admin-${crypto.randomBytes(3).toString('hex')}@example.org`, password: strongPassword() };
  await page.goto(link);
  await page.fill('#f-organisation_name', organisation);
  await page.fill('#f-name', 'First Admin');
  await page.fill('#f-email', admin.email);
  await page.fill('#f-password', admin.password);
  await page.fill('#f-password_confirm', admin.password);
  await page.click('form button[type=submit]');
  await page.waitForURL('**/dashboard');
  return { ...admin, page };
}

/**
 * The administrator invites a colleague (Users → Invite), who opens the
 * one-time link in a browser of their own and chooses a password. With
 * `recording`, the organisation's recording policy is set to "on demand" first.
 */
export async function adminInvites(admin: Staff, base: string, role: 'clerk' | 'admin' | 'compliance', options: { recording?: boolean; browser?: Browser } = {}): Promise<Staff> {
  const page = admin.page;
  if (options.recording) {
    await page.goto(`${base}/admin/organisation`);
    const form = page.locator('form[action="/admin/organisation/recording"]');
    await form.locator('#f-mode-on_demand').check();
    await form.locator('button[type=submit]').click();
    await page.waitForLoadState('load');
  }
  const person = { email: `${role}-${crypto.randomBytes(3).toString('hex')}@example.org`, password: strongPassword() };
  await page.goto(`${base}/admin/users`);
  const form = page.locator('form[action="/admin/users"]');
  await form.locator('#f-name').fill(`A ${role}`);
  await form.locator('#f-email').fill(person.email);
  await form.locator('#f-role').selectOption(role);
  await form.locator('button[type=submit]').click();
  const link = await page.locator('#issued-link').inputValue();
  const context = await (options.browser ?? page.context().browser()!).newContext();
  const own = await context.newPage();
  await own.goto(link);
  await own.fill('#f-password', person.password);
  await own.fill('#f-password_confirm', person.password);
  await own.click('form button[type=submit]');
  await own.waitForLoadState('load');
  return { ...person, page: own };
}
