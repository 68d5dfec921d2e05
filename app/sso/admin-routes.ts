import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { flash } from '../http/flash';
import { publicBase } from '../http/links';
import { formAction, renderPage, submitForm, type Form, type FormPage } from '../http/form-page';
import {
  allowedAlgs, common, LDAP_FIELDS, MAX_MAPPINGS, mappingGroupField, mappingRoleField, OIDC_FIELDS, ROLES, settingsFields, type Kind,
} from './admin-forms';
import { SsoAdminService, type ProviderView, type SsoTestResult } from './admin-service';
import { DEFAULT_OIDC_ALGS } from './oidc-settings';
import type { SsoSecrets } from './provider-settings';
import { ssoUrls, type SsoUrls } from './urls';

export interface SsoAdminDeps {
  knex: Knex;
  config?: Config;
  secrets: SsoSecrets;
}

const PAGE = '/admin/sso';

function service(deps: SsoAdminDeps, req: Request): SsoAdminService {
  return new SsoAdminService(deps.knex, callerOf(req), deps.secrets);
}

/** The URLs to register at the provider (the sign-in routes answer them). */
function urlsOf(deps: SsoAdminDeps, req: Request): SsoUrls {
  return ssoUrls(publicBase(req, { publicUrl: deps.config?.publicUrl }), callerOf(req).user.organisationSlug);
}

const asText = (v: unknown): string => (v === undefined || v === null ? '' : Array.isArray(v) ? v.join(' ') : String(v));

/** The form values of a kind: the stored provider's, or the schemas' defaults for a new one. */
function valuesOf(kind: Kind, provider: ProviderView | undefined): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const c = common(kind);
  const s = provider?.settings ?? {};
  if (kind === 'ldap') {
    const defaults: Record<string, unknown> = {
      userAttribute: 'uid', groupSource: 'memberOf', memberOfAttribute: 'memberOf', groupMemberAttribute: 'member',
      emailAttribute: 'mail', nameAttribute: 'displayName', subjectAttribute: 'entryUUID', timeoutMs: 5000,
    };
    for (const [key, field] of Object.entries(LDAP_FIELDS)) {
      if (key === 'bindPassword') continue;
      if (key === 'startTls') values[field] = s.startTls ? 'on' : '';
      else values[field] = asText(s[key] ?? defaults[key]);
    }
    values[c.checkMinutes] = String(provider?.checkMinutes ?? 60);
  } else {
    const defaults: Record<string, unknown> = { scopes: ['openid', 'email', 'profile'], groupsClaim: 'groups', emailClaim: 'email', nameClaim: 'name', clockSkewSeconds: 60 };
    for (const [key, field] of Object.entries(OIDC_FIELDS)) {
      if (key === 'clientSecret' || key === 'redirectUri') continue;
      if (key === 'allowedAlgs') values[field] = (s.allowedAlgs as string[] | undefined) ?? [...DEFAULT_OIDC_ALGS];
      else values[field] = asText(s[key] ?? defaults[key]);
    }
  }
  values[c.enabled] = provider?.enabled ? 'on' : '';
  values[c.label] = provider?.label ?? (kind === 'ldap' ? 'LDAP' : 'OpenID Connect');
  provider?.mappings.forEach((m, i) => {
    values[mappingGroupField(kind, i)] = m.directory_group;
    values[mappingRoleField(kind, i)] = m.role;
  });
  return values;
}

interface Context {
  test?: SsoTestResult;
}

function pageOf(deps: SsoAdminDeps): FormPage<Context | void> {
  return {
    view: 'admin/sso',
    noStore: true,
    async load(req, context) {
      const sso = service(deps, req);
      const providers = await sso.providers();
      const urls = urlsOf(deps, req);
      const breakGlass = await sso.breakGlassCandidates();
      const passwordSignIn = await sso.passwordSignIn();
      return {
        title: req.t('sso_admin.title'),
        providers,
        urls,
        secretsFromConfig: sso.secretsFromConfig(),
        breakGlass,
        passwordSignIn,
        test: context ? context.test ?? null : null,
        roles: ROLES,
        algs: allowedAlgs,
        ldapFields: LDAP_FIELDS,
        oidcFields: OIDC_FIELDS,
        mappingRows: (kind: Kind) => Math.min(MAX_MAPPINGS, (providers[kind]?.mappings.length ?? 0) + 3),
        mappingGroupField,
        mappingRoleField,
        values: {
          ...valuesOf('ldap', providers.ldap),
          ...valuesOf('oidc', providers.oidc),
          password_sign_in: passwordSignIn ? 'on' : '',
          break_glass: breakGlass.filter((u) => u.breakGlass).map((u) => u.id),
          ldap_test_user: '',
          oidc_test_values: '',
        },
      };
    },
  };
}

function forms(deps: SsoAdminDeps) {
  const page = pageOf(deps);
  return {
    ldap: { page, fields: settingsFields('ldap') },
    oidc: { page, fields: settingsFields('oidc') },
    ldapTest: { page, fields: { ldap_test: 'text', ldap_test_user: 'text' } },
    oidcTest: { page, fields: { oidc_test: 'text', oidc_test_values: 'text' } },
    password: { page, fields: { password_sign_in: 'text', break_glass: 'list' } },
  } satisfies Record<string, Form<Context | void>>;
}

/** GET /admin/sso */
export function ssoAdminPage(deps: SsoAdminDeps): RequestHandler {
  const page = pageOf(deps);
  return (req, res) => renderPage(page, req, res, undefined);
}

/** POST /admin/sso/:kind (ldap, oidc): the provider's settings, secret and mapping. */
function saveSettings(deps: SsoAdminDeps, kind: Kind): RequestHandler {
  return formAction(forms(deps)[kind], async (req, res) => {
    await service(deps, req).save(kind, (req.body ?? {}) as Record<string, unknown>, urlsOf(deps, req).callback);
    flash(req, 'success', `sso_admin.${kind}_saved`);
    res.redirect(303, `${PAGE}#${kind}`);
  });
}

export const saveLdapSettings = (deps: SsoAdminDeps) => saveSettings(deps, 'ldap');
export const saveOidcSettings = (deps: SsoAdminDeps) => saveSettings(deps, 'oidc');

/** POST /admin/sso/:kind/test: the page with what the Test found (never a secret). */
function testProvider(deps: SsoAdminDeps, kind: Kind): RequestHandler {
  const form = kind === 'ldap' ? forms(deps).ldapTest : forms(deps).oidcTest;
  return (req, res) =>
    submitForm(form, req, res, undefined, async () => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const username = kind === 'ldap' && typeof body.ldap_test_user === 'string' ? body.ldap_test_user.slice(0, 1000) : undefined;
      const values = kind === 'oidc' && typeof body.oidc_test_values === 'string'
        ? body.oidc_test_values.split(/\r?\n/).map((v) => v.trim()).filter((v) => v.length > 0 && v.length <= 1000).slice(0, 100)
        : undefined;
      const test = await service(deps, req).test(kind, username, values);
      await renderPage(form.page, req, res, { test });
    });
}

export const testLdap = (deps: SsoAdminDeps) => testProvider(deps, 'ldap');
export const testOidc = (deps: SsoAdminDeps) => testProvider(deps, 'oidc');

/** POST /admin/sso/password: password sign-in on or off and the break-glass administrators. */
export function savePasswordSignIn(deps: SsoAdminDeps): RequestHandler {
  return formAction(forms(deps).password, async (req, res) => {
    await service(deps, req).setPasswordSignIn(req.body);
    flash(req, 'success', 'sso_admin.password_saved');
    res.redirect(303, `${PAGE}#password`);
  });
}
