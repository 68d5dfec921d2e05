import type { Page } from 'playwright-core';

export interface SsoPagesOutcome {
  /** The organisation's slug, read from the callback URL the page shows. */
  slug: string;
  ldapTest: string;
  oidcTest: string;
  /** The text of /sso/<slug>, the staff's sign-in choice. */
  signInChoice: string;
}

async function submit(page: Page, action: string): Promise<void> {
  await Promise.all([page.waitForLoadState('load'), page.locator(`form[action="${action}"] button[type=submit]`).first().click()]);
  await page.waitForLoadState('load');
}

/**
 * An administrator configures LDAP and OpenID Connect on /admin/sso
 * through the page, for a directory and a provider at 127.0.0.1:9 (nothing
 * listens there: the Test buttons then run the real directory clients and
 * report them unreachable), and both methods appear on /sso/<slug>. Used
 * against the app in a test process and against the image.
 */
export async function adminConfiguresUnreachableDirectories(page: Page, base: string): Promise<SsoPagesOutcome> {
  page.setDefaultTimeout(15_000);
  await page.goto(`${base}/admin/sso`);
  const slug = new URL((await page.locator('#oidc-callback-url').textContent()) ?? '').pathname.split('/')[2]!;

  const ldap = page.locator('form[action="/admin/sso/ldap"]');
  await ldap.locator('#f-ldap_enabled').check();
  await ldap.locator('#f-ldap_label').fill('Company directory');
  await ldap.locator('#f-ldap_url').fill('ldap://127.0.0.1:9');
  await ldap.locator('#f-ldap_bind_dn').fill('cn=vclerk,ou=services,dc=example,dc=org');
  await ldap.locator('#f-ldap_bind_password').fill('Service-Pw-1');
  await ldap.locator('#f-ldap_base_dn').fill('ou=people,dc=example,dc=org');
  await ldap.locator('#f-ldap_timeout_ms').fill('1000');
  await ldap.locator('#f-ldap_map_group_0').fill('cn=vclerk-clerks,ou=groups,dc=example,dc=org');
  await ldap.locator('#f-ldap_map_role_0').selectOption('clerk');
  await submit(page, '/admin/sso/ldap');
  await page.locator('form[action="/admin/sso/ldap/test"] #f-ldap_test_user').fill('jdoe');
  await submit(page, '/admin/sso/ldap/test');
  const ldapTest = (await page.locator('#test-result').textContent()) ?? '';

  const oidc = page.locator('form[action="/admin/sso/oidc"]');
  await oidc.locator('#f-oidc_enabled').check();
  await oidc.locator('#f-oidc_label').fill('Company login');
  await oidc.locator('#f-oidc_issuer').fill('http://127.0.0.1:9');
  await oidc.locator('#f-oidc_client_id').fill('vclerk');
  await oidc.locator('#f-oidc_client_secret').fill('Client-Secret-1');
  await oidc.locator('#f-oidc_map_group_0').fill('vclerk-admins');
  await oidc.locator('#f-oidc_map_role_0').selectOption('admin');
  await submit(page, '/admin/sso/oidc');
  await submit(page, '/admin/sso/oidc/test');
  const oidcTest = (await page.locator('#test-result').textContent()) ?? '';

  await page.goto(`${base}/sso/${slug}`);
  const signInChoice = (await page.locator('main').textContent()) ?? '';
  return { slug, ldapTest, oidcTest, signInChoice };
}
