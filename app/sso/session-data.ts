import 'express-session';
import type { OidcPending } from './oidc-client';

/** What single sign-on keeps in the session (`app/access/session-data.ts` has the rest). */
declare module 'express-session' {
  interface SessionData {
    /** An OpenID Connect sign-in under way: which provider, and its state, nonce and PKCE verifier (taken out at the callback). */
    oidcPending?: OidcPending & { providerId: string };
    /** The provider the session was signed in through (single sign-on). */
    ssoProviderId?: string;
    /** The OpenID provider's session id and subject: a back-channel logout token names one of them. */
    oidcSid?: string;
    oidcSub?: string;
  }
}
