import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { interactivePages } from './oidc-interactions';

/**
 * A real OpenID provider (npm `oidc-provider`) on 127.0.0.1 for the SSO
 * tests: one confidential client, test accounts with email, name and
 * groups, an interaction that signs the chosen account in without a form
 * (so plain HTTP requests following redirects, or a browser, complete the
 * flow), consent granted automatically (or, with `interactive`, its own
 * sign-in and consent pages for a browser), back-channel logout enabled, and
 * helpers to hand the relying party a crafted ID token at the token
 * endpoint (tampered, expired, wrong audience or issuer, `alg: none`, HS256).
 * oidc-provider and jose are ES modules: loaded with dynamic imports.
 */

export interface TestAccount {
  sub: string;
  email: string;
  name: string;
  groups: string[];
  emailVerified?: boolean;
}

export interface TestProviderOptions {
  /** The relying party's callback URL registered for the client. */
  redirectUri?: string;
  /** Where the provider POSTs back-channel logout tokens; by default a receiver on the provider's own server (see `logoutTokens`). */
  backchannelLogoutUri?: string;
  postLogoutRedirectUri?: string;
  clientId?: string;
  clientSecret?: string;
  accounts?: TestAccount[];
  /**
   * The provider shows its own sign-in page (account and password, see
   * test/support/oidc-interactions.ts) and asks for consent, as a real one
   * does for a browser; by default it signs the chosen account in without a
   * form and consents by itself.
   */
  interactive?: boolean;
}

/** A JWT rewrite applied to the next token endpoint answer's id_token. */
export type IdTokenRewrite = (idToken: string) => Promise<string> | string;

export interface TestProvider {
  issuer: string;
  port: number;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** The account the next interaction signs in (unless the authorization request has a login_hint naming an account). */
  signInAs(sub: string): void;
  setGroups(sub: string, groups: string[]): void;
  addAccount(account: TestAccount): void;
  /** The next token endpoint answer carries the rewritten ID token instead of the real one (one-shot). */
  rewriteNextIdToken(rewrite: IdTokenRewrite): void;
  /** Signs claims as a JWT: with the provider's key, another key under the same kid, the client secret (HS256) or unsigned. */
  mint(claims: Record<string, unknown>, options?: { key?: 'provider' | 'other' | 'client-secret' | 'none'; alg?: string; typ?: string }): Promise<string>;
  /** The real provider sends a back-channel logout token for this subject and provider session to the client's logout URI. */
  backchannelLogout(sub: string, sid: string): Promise<void>;
  /** Logout tokens the built-in receiver got (when no backchannelLogoutUri was given). */
  logoutTokens: string[];
  /** Follows redirects from an authorization URL (keeping cookies) until the provider sends the browser to the redirect URI; returns that URL. */
  authorize(authorizationUrl: string): Promise<URL>;
  close(): Promise<void>;
}

export const TEST_ACCOUNTS: TestAccount[] = [
  { sub: 'alice-0001', email: 'Alice@Example.test', name: 'Alice Admin', groups: ['vclerk-admins', 'staff'] },
  { sub: 'bob-0002', email: 'bob@example.test', name: 'Bob Clerk', groups: ['vclerk-clerks'] },
  { sub: 'carol-0003', email: 'carol@example.test', name: 'Carol Compliance', groups: ['vclerk-compliance'], emailVerified: false },
];

const dynamicImport = (name: string) => import(name) as Promise<any>; // oidc-provider ships no types

export function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h!, 'base64url').toString()), payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) };
}
/** Changes one byte of the payload, keeping the header and the (now wrong) signature. */
export function tamperPayload(token: string): string {
  const [h, p, s] = token.split('.');
  const payload = Buffer.from(p!, 'base64url');
  const text = payload.toString();
  // Change a character of the e-mail address (a value in the JSON, so the payload still parses).
  const at = text.indexOf('@');
  const index = at > 0 ? at - 1 : Math.floor(payload.length / 2);
  payload[index] = payload[index] === 0x78 ? 0x79 : 0x78;
  return `${h}.${b64url(payload)}.${s}`;
}

/**
 * Two warnings of oidc-provider that do not apply to a test provider are
 * dropped: it names Node 22 as its runtime (it works on Node 20, VClerk's
 * runtime), and it warns that its in-memory store is for development only.
 */
const EXPECTED_WARNINGS = ['Unsupported runtime', 'in-memory adapter'];
async function quietly<T>(load: () => Promise<T> | T): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && EXPECTED_WARNINGS.some((w) => (args[0] as string).includes(w))) return;
    warn(...args);
  };
  try {
    return await load();
  } finally {
    console.warn = warn;
  }
}

export async function startTestProvider(options: TestProviderOptions = {}): Promise<TestProvider> {
  const [{ default: Provider }, { default: MemoryAdapter }, jose] = await quietly(() =>
    Promise.all([dynamicImport('oidc-provider'), dynamicImport('oidc-provider/lib/adapters/memory_adapter.js'), import('jose')]),
  );
  const clientId = options.clientId ?? 'vclerk-test';
  const clientSecret = options.clientSecret ?? 'test-client-secret-0123456789abcdef0123456789abcdef';
  const accounts = new Map((options.accounts ?? TEST_ACCOUNTS).map((a) => [a.sub, { ...a, groups: [...a.groups] }]));
  let nextAccount = accounts.keys().next().value as string;
  let rewrite: IdTokenRewrite | undefined;
  const logoutTokens: string[] = [];

  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const other = await jose.generateKeyPair('RS256', { extractable: true });
  const kid = 'test-rs256';
  const signingJwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  void publicKey;

  // Listen first: the issuer names the port.
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const redirectUri = options.redirectUri ?? 'http://127.0.0.1:9/auth/oidc/callback';
  const backchannelLogoutUri = options.backchannelLogoutUri ?? `${issuer}/test-rp/backchannel-logout`;

  const provider = await quietly(() => new Provider(issuer, {
    adapter: MemoryAdapter,
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        post_logout_redirect_uris: [options.postLogoutRedirectUri ?? 'http://127.0.0.1:9/'],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
        backchannel_logout_uri: backchannelLogoutUri,
        backchannel_logout_session_required: true,
      },
    ],
    jwks: { keys: [signingJwk] },
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups', 'realm_access'], groups: ['groups'] },
    conformIdTokenClaims: false,
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'HS256'] },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection); the
    // back-channel logout receiver of the tests is on 127.0.0.1, so its dispatcher is left out.
    fetch(url: string | URL, init: RequestInit & { dispatcher?: unknown }) {
      const { dispatcher: _dispatcher, ...rest } = init;
      return fetch(url, rest);
    },
    async findAccount(_ctx: unknown, id: string) {
      const account = accounts.get(id);
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: account.email,
            email_verified: account.emailVerified ?? true,
            name: account.name,
            groups: [...account.groups],
            realm_access: { roles: [...account.groups] },
          };
        },
      };
    },
    // Consent is given for whatever the (only, first-party) client asks.
    async loadExistingGrant(ctx: any) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (options.interactive) return grant; // only what the person allowed on the consent page
      grant ??= new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
      await grant.save();
      return grant;
    },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
    renderError(ctx: any, out: Record<string, unknown>) {
      ctx.type = 'json';
      ctx.body = out;
    },
  }));

  // The interaction signs the chosen account in without a form (unless the provider is interactive).
  const pages = options.interactive ? interactivePages(provider, accounts) : undefined;
  provider.use(async (ctx: any, next: () => Promise<void>) => {
    if (pages && (await pages(ctx))) return;
    if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const hint = details.params.login_hint;
      const accountId = typeof hint === 'string' && accounts.has(hint) ? hint : nextAccount;
      const result = details.prompt.name === 'login' ? { login: { accountId } } : {};
      const redirectTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(redirectTo);
      return;
    }
    if (ctx.method === 'POST' && ctx.path === '/test-rp/backchannel-logout') {
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
      const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token');
      if (token) logoutTokens.push(token);
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    await next();
    if (ctx.path === '/token' && ctx.status === 200 && rewrite && ctx.body && typeof ctx.body.id_token === 'string') {
      const apply = rewrite;
      rewrite = undefined;
      ctx.body = { ...ctx.body, id_token: await apply(ctx.body.id_token) };
    }
  });

  server.on('request', provider.callback());
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function mint(claims: Record<string, unknown>, opts: { key?: 'provider' | 'other' | 'client-secret' | 'none'; alg?: string; typ?: string } = {}): Promise<string> {
    const key = opts.key ?? 'provider';
    if (key === 'none') {
      const header = { alg: 'none', ...(opts.typ ? { typ: opts.typ } : {}) };
      return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}.`;
    }
    const alg = opts.alg ?? (key === 'client-secret' ? 'HS256' : 'RS256');
    const signer = new jose.SignJWT(claims).setProtectedHeader({ alg, ...(key === 'client-secret' ? {} : { kid }), ...(opts.typ ? { typ: opts.typ } : {}) });
    const secret = key === 'client-secret' ? new TextEncoder().encode(clientSecret) : key === 'other' ? other.privateKey : privateKey;
    return signer.sign(secret);
  }

  async function authorize(authorizationUrl: string): Promise<URL> {
    const jar = new Map<string, string>();
    let url = new URL(authorizationUrl);
    for (let hop = 0; hop < 12; hop++) {
      if (url.href.startsWith(redirectUri.split('?')[0]!)) return url;
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const response = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') jar.delete(name);
        else jar.set(name, value);
      }
      const location = response.headers.get('location');
      if (!location) throw new Error(`the provider stopped at ${url.pathname} with ${response.status}: ${(await response.text()).slice(0, 300)}`);
      await response.body?.cancel();
      url = new URL(location, url);
    }
    throw new Error('too many redirects');
  }

  return {
    issuer,
    port,
    clientId,
    clientSecret,
    redirectUri,
    signInAs(sub) {
      if (!accounts.has(sub)) throw new Error(`no test account ${sub}`);
      nextAccount = sub;
    },
    setGroups(sub, groups) {
      const account = accounts.get(sub);
      if (!account) throw new Error(`no test account ${sub}`);
      account.groups = [...groups];
    },
    addAccount(account) {
      accounts.set(account.sub, { ...account, groups: [...account.groups] });
    },
    rewriteNextIdToken(fn) {
      rewrite = fn;
    },
    mint,
    async backchannelLogout(sub, sid) {
      const client = await provider.Client.find(clientId);
      await client.backchannelLogout(sub, sid);
    },
    logoutTokens,
    authorize,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}
