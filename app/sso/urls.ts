/**
 * The appliance's single sign-on addresses of an organisation, from the
 * public base URL (VCLERK_PUBLIC_URL, else the request's origin): the page
 * staff open, and the two URLs registered at an OpenID Connect provider.
 * The sign-in routes answer them and the admin page shows them; the
 * callback is never typed in, so the two cannot disagree.
 */
export interface SsoUrls {
  page: string;
  callback: string;
  backchannelLogout: string;
}

export function ssoUrls(base: string, slug: string): SsoUrls {
  const root = `${base.replace(/\/+$/, '')}/sso/${encodeURIComponent(slug)}`;
  return { page: root, callback: `${root}/oidc/callback`, backchannelLogout: `${root}/oidc/backchannel-logout` };
}
