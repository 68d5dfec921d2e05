/**
 * The test provider's own sign-in and consent pages, for tests that drive a
 * real browser through the provider (test/support/oidc-provider.ts with
 * `interactive: true`): a form asking for the account (its subject or
 * e-mail address) and password, then a consent page listing what the
 * client asks for. Plain HTML with no scripts, styles or outside resources
 * (oidc-provider's own devInteractions load web fonts from the internet;
 * tests send nothing beyond loopback).
 */

/** The password of every test account at the interactive provider. */
export const TEST_ACCOUNT_PASSWORD = 'directory-password-for-tests';

interface Account {
  sub: string;
  email: string;
}

const escape = (value: string) => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;
}

function loginPage(uid: string, clientId: string, error?: string): string {
  return page(
    'Test provider: sign in',
    `<p>Sign in to continue to <strong id="client">${escape(clientId)}</strong>.</p>` +
      (error ? `<p role="alert" id="error">${escape(error)}</p>` : '') +
      `<form method="post" action="/interaction/${escape(uid)}/login">` +
      '<label for="login">Account</label> <input id="login" name="login" autocomplete="username" required> ' +
      '<label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required> ' +
      '<button type="submit" id="sign-in">Sign in</button></form>',
  );
}

function consentPage(uid: string, clientId: string, scopes: string[], claims: string[]): string {
  const items = [...scopes.map((s) => `scope ${s}`), ...claims.map((c) => `claim ${c}`)].map((i) => `<li>${escape(i)}</li>`).join('');
  return page(
    'Test provider: allow access',
    `<p><strong id="client">${escape(clientId)}</strong> asks for:</p><ul id="asked">${items}</ul>` +
      `<form method="post" action="/interaction/${escape(uid)}/consent"><button type="submit" id="allow">Allow</button></form>`,
  );
}

async function formBody(req: AsyncIterable<unknown>): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16_384) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

/**
 * Koa middleware for oidc-provider: answers GET /interaction/:uid (the
 * sign-in or the consent page), POST /interaction/:uid/login and POST
 * /interaction/:uid/consent; returns false for any other request.
 */
export function interactivePages(provider: any, accounts: Map<string, Account>) {
  return async (ctx: any): Promise<boolean> => {
    const match = /^\/interaction\/([^/]+)(?:\/(login|consent))?$/.exec(ctx.path);
    if (!match) return false;
    const [, uid, step] = match;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
    const clientId = String(details.params.client_id);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'html';
    if (ctx.method === 'GET' && !step) {
      if (details.prompt.name === 'login') ctx.body = loginPage(uid!, clientId);
      else if (details.prompt.name === 'consent') ctx.body = consentPage(uid!, clientId, details.prompt.details.missingOIDCScope ?? [], details.prompt.details.missingOIDCClaims ?? []);
      else ctx.throw(501, `no page for the ${details.prompt.name} prompt`);
      return true;
    }
    if (ctx.method !== 'POST' || !step || details.prompt.name !== step) ctx.throw(400, 'unexpected interaction step');
    let result: Record<string, unknown>;
    if (step === 'login') {
      const form = await formBody(ctx.req);
      const login = (form.get('login') ?? '').trim().toLowerCase();
      const account = [...accounts.values()].find((a) => a.sub.toLowerCase() === login || a.email.toLowerCase() === login);
      if (!account || form.get('password') !== TEST_ACCOUNT_PASSWORD) {
        ctx.status = 401;
        ctx.body = loginPage(uid!, clientId, 'Unknown account or wrong password.');
        return true;
      }
      result = { login: { accountId: account.sub } };
    } else {
      const { missingOIDCScope, missingOIDCClaims } = details.prompt.details;
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId });
      if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
      if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
      result = { consent: { grantId: await grant.save() } };
    }
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: step === 'consent' });
    ctx.status = 303;
    ctx.redirect(redirectTo);
    return true;
  };
}
