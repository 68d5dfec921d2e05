import type { Request, RequestHandler } from 'express';
import { setPassword, setPasswordPage } from './staff/password-routes';
import { accountPage, changeLanguage, changePassword } from './staff/account-routes';
import { keepalive, KEEPALIVE_PATH, offerKeepalive } from './staff/session-routes';
import {
  changeRole, deactivateUser, inviteUser, listUsers, reactivateUser, resetPassword, showUser, unlockUser, type AdminDeps,
} from './staff/routes';
import { apiKeyAuth } from './api-keys/middleware';
import { createApiKey, listApiKeys, revokeApiKey, whoami } from './api-keys/routes';
import { perKeyRateLimit } from './api/rate-limit';
import { limitRefusals } from './http/limiter';
import { createCallLink, getCall, listCalls, listClerks, openApi, queueState, revokeLink } from './api/routes';
import { insightsChart, insightsReport } from './insights/api-routes';
import { insightsExport, insightsReportPage, saveInsightsSettings } from './insights/routes';
import type { Access } from './access/guards';
import { login, loginPage, logout } from './sign-in/routes';
import { ldapPage, ldapSignIn, oidcBackchannelLogout, oidcCallback, oidcStart, ssoChoose, ssoFind } from './sso/routes';
import type { PassportInstance } from './sign-in/passport';
import type { LoginService } from './sign-in/login-service';
import type { LoginThrottle } from './sign-in/throttle';
import type { AppContext } from './context';
import { auditLog, verifyAudit } from './compliance/routes';
import { applianceKeyPem, createExport, exportFile, exportManifest, exportPage } from './compliance/export-routes';
import { applyImport, createProduct, exportCatalog, importPage, listProducts, newProductPage, previewImport, searchCatalog, showProduct, toggleProduct, updateProduct } from './catalog/routes';
import { makeImageFirst, productImage, removeImage, uploadImage } from './catalog/image-routes';
import { callLinkPage, clerkCallPage, customerCallPage, endCall, revokeCallLink, startCall } from './calls/routes';
import { CallLinkTokens } from './calls/link-token';
import { customerCardImage, customerSummaryPdf, saveCallNotes } from './curation/summary-routes';
import { dashboard } from './dashboard/routes';
import { liveness, readiness } from './health/routes';
import { home } from './home/routes';
import { chooseLanguage } from './language/routes';
import { savePrivacyContact } from './organisation/privacy-routes';
import { brandingLogo, brandingTheme, organisationPage, updateOrganisationBranding, updateOrganisationProfile } from './organisation/routes';
import { acceptFromQueue, enterQueue, leaveQueue, liveQueue, queueLanding, saveQueueSettings, setAvailability, ticketStatus, waitingPage } from './queue/routes';
import { parseRecordingKey } from './recordings/crypto';
import { listRecordings, recordingMedia, recordingsOpen, saveRecordingPolicy, showRecording } from './recordings/routes';
import { completeSetup, setupPage } from './setup/routes';
import { metrics, metricsAccess, statusPage } from './ops/routes';
import { apiRequestsPage, retentionPage, runRetentionNow, saveRetention } from './retention/routes';
import { liftHold, listHolds, placeHold } from './holds/routes';
import { changeRequestStatus, downloadRequest, executeRequest, listRequests, registerRequest, showRequest } from './requests/routes';
import { privacyPage, savePrivacyText } from './privacy-texts/routes';
import { securityPage } from './compliance/security';
import { closeOrganisation, closurePage } from './closure/routes';
import { createWebhook, deleteWebhook, listWebhooks, rotateWebhookSecret, toggleWebhook } from './webhooks/routes';
import { queueFraming, saveWidgetOrigins, widgetData, widgetJs } from './widget/routes';
import { SsoSecrets } from './sso/provider-settings';
import { saveLdapSettings, saveOidcSettings, savePasswordSignIn, ssoAdminPage, testLdap, testOidc } from './sso/admin-routes';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** One line of the route table: method, path, who may use it, and the handlers. */
export interface Route {
  method: Method;
  path: string;
  access: Access;
  handlers: RequestHandler[];
  /** For menus: beyond `access`, whether the signed-in user may open it now (the check its handler makes, without auditing). */
  opens?: (req: Request) => Promise<boolean>;
}

/** Shared services the app factory builds once and hands to the route table. */
export interface RouteDeps extends AppContext {
  passport: PassportInstance;
  login: LoginService;
  throttle: LoginThrottle;
}

const ADMIN = ['admin'] as const;
const COMPLIANCE = ['compliance', 'admin'] as const;
const CLERK = ['clerk'] as const;
const CLERK_OR_ADMIN = ['clerk', 'admin'] as const;
/** Recordings: every staff role may ask; the organisation's recording policy decides (403, audited). */
const RECORDINGS = ['compliance', 'admin', 'clerk'] as const;

/**
 * The explicit route table: every URL the appliance answers, in one place,
 * with who may call it. The app factory puts the access guard in front of
 * each handler; feature modules own the handlers.
 */
export function routes(deps: RouteDeps): Route[] {
  const { db } = deps;
  const admin: AdminDeps = { knex: db, config: deps.config, throttle: deps.throttle };
  const links = new CallLinkTokens(deps.sessionSecret);
  // The single sign-on secrets: from the configuration, else sealed in the database under the session secret.
  const ssoSecrets = new SsoSecrets(deps.sessionSecret, deps.config?.ssoSecrets);
  const sso = { db, config: deps.config, secrets: ssoSecrets, login: deps.login, throttle: deps.throttle };
  const calls = { knex: db, config: deps.config, hub: deps.hub, links };
  const api = { knex: db, config: deps.config, links };
  const limit = perKeyRateLimit();
  const ops = { knex: db, config: deps.config, logger: deps.logger, ops: deps.ops };
  const ssoAdmin = { knex: db, config: deps.config, secrets: ssoSecrets };
  const recordings = { knex: db, config: deps.config, recordingKey: deps.config?.recordingKey ? parseRecordingKey(deps.config.recordingKey) : null };
  return [
    { method: 'get', path: '/healthz', access: 'public', handlers: [liveness(deps)] },
    { method: 'get', path: '/readyz', access: 'public', handlers: [readiness(deps)] },
    { method: 'get', path: '/', access: 'public', handlers: [home] },
    { method: 'get', path: '/language', access: 'public', handlers: [chooseLanguage] },
    { method: 'get', path: '/branding/:slug/logo', access: 'public', handlers: [limitRefusals(db, 'link'), brandingLogo(db)] },
    { method: 'get', path: '/branding/:slug/theme.css', access: 'public', handlers: [limitRefusals(db, 'link'), brandingTheme(db)] },

    { method: 'get', path: '/login', access: 'public', handlers: [loginPage] },
    { method: 'post', path: '/login', access: 'public', handlers: [login(deps.passport, deps.login, db)] },
    { method: 'post', path: '/logout', access: 'public', handlers: [logout(db)] },
    { method: 'get', path: '/sso', access: 'public', handlers: [ssoFind] },
    { method: 'get', path: '/sso/:slug', access: 'public', handlers: [limitRefusals(db, 'link'), ssoChoose(sso)] },
    { method: 'get', path: '/sso/:slug/ldap', access: 'public', handlers: [limitRefusals(db, 'link'), ldapPage(sso)] },
    { method: 'post', path: '/sso/:slug/ldap', access: 'public', handlers: [limitRefusals(db, 'link'), ldapSignIn(sso)] },
    { method: 'get', path: '/sso/:slug/oidc', access: 'public', handlers: [limitRefusals(db, 'link'), oidcStart(sso)] },
    { method: 'get', path: '/sso/:slug/oidc/callback', access: 'public', handlers: [limitRefusals(db, 'link'), oidcCallback(sso)] },
    { method: 'post', path: '/sso/:slug/oidc/backchannel-logout', access: 'public', handlers: [limitRefusals(db, 'link'), oidcBackchannelLogout(sso)] },
    { method: 'get', path: '/setup/:token', access: 'public', handlers: [limitRefusals(db, 'link'), setupPage(db)] },
    { method: 'post', path: '/setup/:token', access: 'public', handlers: [limitRefusals(db, 'link'), completeSetup(db)] },
    { method: 'get', path: '/invite/:token', access: 'public', handlers: [limitRefusals(db, 'link'), setPasswordPage(db, 'invite')] },
    { method: 'post', path: '/invite/:token', access: 'public', handlers: [limitRefusals(db, 'link'), setPassword(db, 'invite')] },
    { method: 'get', path: '/password-reset/:token', access: 'public', handlers: [limitRefusals(db, 'link'), setPasswordPage(db, 'password_reset')] },
    { method: 'post', path: '/password-reset/:token', access: 'public', handlers: [limitRefusals(db, 'link'), setPassword(db, 'password_reset')] },

    { method: 'get', path: '/dashboard', access: 'staff', handlers: [dashboard(db, deps.config)] },
    { method: 'get', path: '/account', access: 'staff', handlers: [accountPage] },
    { method: 'post', path: '/account/password', access: 'staff', handlers: [changePassword(db, deps.throttle)] },
    { method: 'post', path: '/account/language', access: 'staff', handlers: [changeLanguage(db)] },
    { method: 'post', path: KEEPALIVE_PATH, access: 'staff', handlers: [keepalive] },

    { method: 'get', path: '/admin/users', access: ADMIN, handlers: [listUsers(admin)] },
    { method: 'post', path: '/admin/users', access: ADMIN, handlers: [inviteUser(admin)] },
    { method: 'get', path: '/admin/users/:id', access: ADMIN, handlers: [showUser(admin)] },
    { method: 'post', path: '/admin/users/:id/role', access: ADMIN, handlers: [changeRole(admin)] },
    { method: 'post', path: '/admin/users/:id/deactivate', access: ADMIN, handlers: [deactivateUser(admin)] },
    { method: 'post', path: '/admin/users/:id/reactivate', access: ADMIN, handlers: [reactivateUser(admin)] },
    { method: 'post', path: '/admin/users/:id/reset-password', access: ADMIN, handlers: [resetPassword(admin)] },
    { method: 'post', path: '/admin/users/:id/unlock', access: ADMIN, handlers: [unlockUser(admin)] },
    { method: 'get', path: '/admin/organisation', access: ADMIN, handlers: [organisationPage(db)] },
    { method: 'post', path: '/admin/organisation', access: ADMIN, handlers: [updateOrganisationProfile(db)] },
    { method: 'post', path: '/admin/organisation/branding', access: ADMIN, handlers: [updateOrganisationBranding(db)] },
    { method: 'post', path: '/admin/organisation/widget', access: ADMIN, handlers: [saveWidgetOrigins(db)] },
    { method: 'post', path: '/admin/organisation/queue', access: ADMIN, handlers: [saveQueueSettings(api)] },
    { method: 'post', path: '/admin/organisation/privacy', access: ADMIN, handlers: [savePrivacyContact(db)] },
    { method: 'post', path: '/admin/organisation/recording', access: ADMIN, handlers: [saveRecordingPolicy(recordings)] },
    { method: 'get', path: '/admin/api-keys', access: ADMIN, handlers: [listApiKeys(db)] },
    { method: 'post', path: '/admin/api-keys', access: ADMIN, handlers: [createApiKey(db)] },
    { method: 'post', path: '/admin/api-keys/:id/revoke', access: ADMIN, handlers: [revokeApiKey(db)] },
    { method: 'get', path: '/admin/webhooks', access: ADMIN, handlers: [listWebhooks(db)] },
    { method: 'post', path: '/admin/webhooks', access: ADMIN, handlers: [createWebhook(db)] },
    { method: 'post', path: '/admin/webhooks/:id/toggle', access: ADMIN, handlers: [toggleWebhook(db)] },
    { method: 'post', path: '/admin/webhooks/:id/rotate', access: ADMIN, handlers: [rotateWebhookSecret(db)] },
    { method: 'post', path: '/admin/webhooks/:id/delete', access: ADMIN, handlers: [deleteWebhook(db)] },
    { method: 'get', path: '/admin/sso', access: ADMIN, handlers: [ssoAdminPage(ssoAdmin)] },
    { method: 'post', path: '/admin/sso/ldap', access: ADMIN, handlers: [saveLdapSettings(ssoAdmin)] },
    { method: 'post', path: '/admin/sso/ldap/test', access: ADMIN, handlers: [testLdap(ssoAdmin)] },
    { method: 'post', path: '/admin/sso/oidc', access: ADMIN, handlers: [saveOidcSettings(ssoAdmin)] },
    { method: 'post', path: '/admin/sso/oidc/test', access: ADMIN, handlers: [testOidc(ssoAdmin)] },
    { method: 'post', path: '/admin/sso/password', access: ADMIN, handlers: [savePasswordSignIn(ssoAdmin)] },
    { method: 'get', path: '/admin/catalog', access: ADMIN, handlers: [listProducts(db)] },
    { method: 'get', path: '/admin/catalog/new', access: ADMIN, handlers: [newProductPage] },
    { method: 'post', path: '/admin/catalog/new', access: ADMIN, handlers: [createProduct(db)] },
    { method: 'get', path: '/admin/catalog/import', access: ADMIN, handlers: [importPage] },
    { method: 'post', path: '/admin/catalog/import/preview', access: ADMIN, handlers: [previewImport(db)] },
    { method: 'post', path: '/admin/catalog/import/apply', access: ADMIN, handlers: [applyImport(db)] },
    { method: 'get', path: '/admin/catalog/export.csv', access: ADMIN, handlers: [exportCatalog(db)] },
    { method: 'get', path: '/admin/catalog/:id', access: ADMIN, handlers: [showProduct(db)] },
    { method: 'post', path: '/admin/catalog/:id', access: ADMIN, handlers: [updateProduct(db)] },
    { method: 'post', path: '/admin/catalog/:id/toggle', access: ADMIN, handlers: [toggleProduct(db)] },
    { method: 'post', path: '/admin/catalog/:id/images', access: ADMIN, handlers: [uploadImage(db)] },
    { method: 'post', path: '/admin/catalog/:id/images/:imageId/delete', access: ADMIN, handlers: [removeImage(db)] },
    { method: 'post', path: '/admin/catalog/:id/images/:imageId/first', access: ADMIN, handlers: [makeImageFirst(db)] },
    { method: 'get', path: '/catalog/images/:imageId', access: CLERK_OR_ADMIN, handlers: [productImage(db)] },
    { method: 'get', path: '/catalog/search', access: CLERK_OR_ADMIN, handlers: [searchCatalog(db)] },
    { method: 'get', path: '/recordings', access: RECORDINGS, handlers: [listRecordings(recordings)], opens: recordingsOpen(recordings) },
    { method: 'get', path: '/recordings/:id', access: RECORDINGS, handlers: [showRecording(recordings)] },
    { method: 'get', path: '/recordings/:id/media', access: RECORDINGS, handlers: [recordingMedia(recordings, 'play')] },
    { method: 'get', path: '/recordings/:id/download', access: RECORDINGS, handlers: [recordingMedia(recordings, 'download')] },
    { method: 'get', path: '/insights', access: CLERK_OR_ADMIN, handlers: [insightsReportPage(db)] },
    { method: 'get', path: '/insights/export/:chart', access: CLERK_OR_ADMIN, handlers: [insightsExport(db)] },
    { method: 'post', path: '/insights/settings', access: ADMIN, handlers: [saveInsightsSettings(db)] },

    // REST API v1: no session; apiKeyAuth authenticates (and audits) every request, per scope.
    { method: 'get', path: '/api/v1/openapi.json', access: 'public', handlers: [openApi] },
    { method: 'get', path: '/api/v1/whoami', access: 'public', handlers: [apiKeyAuth(db), limit, whoami] },
    { method: 'post', path: '/api/v1/call-links', access: 'public', handlers: [apiKeyAuth(db, 'calls:write'), limit, createCallLink(api)] },
    { method: 'get', path: '/api/v1/calls', access: 'public', handlers: [apiKeyAuth(db, 'calls:read'), limit, listCalls(api)] },
    { method: 'get', path: '/api/v1/calls/:id', access: 'public', handlers: [apiKeyAuth(db, 'calls:read'), limit, getCall(api)] },
    { method: 'get', path: '/api/v1/queue', access: 'public', handlers: [apiKeyAuth(db, 'calls:read'), limit, queueState(api)] },
    { method: 'get', path: '/api/v1/clerks', access: 'public', handlers: [apiKeyAuth(db, 'calls:read'), limit, listClerks(api)] },
    { method: 'post', path: '/api/v1/calls/:id/revoke-link', access: 'public', handlers: [apiKeyAuth(db, 'calls:write'), limit, revokeLink(api)] },
    { method: 'get', path: '/api/v1/insights', access: 'public', handlers: [apiKeyAuth(db, 'insights:read'), limit, insightsReport(db)] },
    { method: 'get', path: '/api/v1/insights/:chart', access: 'public', handlers: [apiKeyAuth(db, 'insights:read'), limit, insightsChart(db)] },

    { method: 'post', path: '/calls', access: CLERK, handlers: [startCall(calls)] },
    { method: 'get', path: '/calls/:id', access: CLERK, handlers: [offerKeepalive(deps), clerkCallPage(calls)] },
    { method: 'get', path: '/calls/:id/link', access: CLERK, handlers: [callLinkPage(calls)] },
    { method: 'post', path: '/calls/:id/end', access: CLERK, handlers: [endCall(calls)] },
    { method: 'post', path: '/calls/:id/revoke', access: CLERK, handlers: [revokeCallLink(calls)] },
    { method: 'post', path: '/calls/:id/notes', access: CLERK, handlers: [saveCallNotes(calls)] },
    { method: 'get', path: '/join/:token', access: 'public', handlers: [limitRefusals(db, 'link'), customerCallPage(calls)] },
    { method: 'get', path: '/join/:token/summary.pdf', access: 'public', handlers: [limitRefusals(db, 'link'), customerSummaryPdf(calls)] },
    { method: 'get', path: '/join/:token/images/:imageId', access: 'public', handlers: [limitRefusals(db, 'link'), customerCardImage(calls)] },

    { method: 'get', path: '/widget.js', access: 'public', handlers: [widgetJs] },
    { method: 'get', path: '/q/:slug/widget.json', access: 'public', handlers: [limitRefusals(db, 'queue'), widgetData(db)] },
    { method: 'get', path: '/q/:slug', access: 'public', handlers: [limitRefusals(db, 'queue'), queueFraming(db), queueLanding(api)] },
    { method: 'post', path: '/q/:slug', access: 'public', handlers: [enterQueue(api)] },
    { method: 'get', path: '/q/:slug/wait', access: 'public', handlers: [limitRefusals(db, 'queue'), queueFraming(db), waitingPage(api)] },
    { method: 'get', path: '/queue/ticket', access: 'public', handlers: [limitRefusals(db, 'queue'), ticketStatus(api)] },
    { method: 'post', path: '/queue/ticket/leave', access: 'public', handlers: [limitRefusals(db, 'queue'), leaveQueue(api)] },
    { method: 'get', path: '/queue.json', access: CLERK, handlers: [liveQueue(api)] },
    { method: 'post', path: '/queue/accept', access: CLERK, handlers: [acceptFromQueue(api)] },
    { method: 'post', path: '/availability', access: CLERK, handlers: [setAvailability(api)] },

    { method: 'get', path: '/compliance/audit', access: COMPLIANCE, handlers: [auditLog(db)] },
    { method: 'get', path: '/compliance/audit/verify', access: COMPLIANCE, handlers: [verifyAudit({ knex: db, config: deps.config })] },
    // compliance: audit export and the appliance key
    { method: 'get', path: '/compliance/audit/export', access: COMPLIANCE, handlers: [exportPage({ knex: db, config: deps.config })] },
    { method: 'post', path: '/compliance/audit/export', access: COMPLIANCE, handlers: [createExport({ knex: db, config: deps.config })] },
    { method: 'get', path: '/compliance/audit/exports/:id/file', access: COMPLIANCE, handlers: [exportFile({ knex: db, config: deps.config })] },
    { method: 'get', path: '/compliance/audit/exports/:id/manifest.json', access: COMPLIANCE, handlers: [exportManifest({ knex: db, config: deps.config })] },
    { method: 'get', path: '/compliance/audit/keys/:keyId.pem', access: COMPLIANCE, handlers: [applianceKeyPem({ knex: db, config: deps.config })] },
    // compliance: retention and legal holds
    { method: 'get', path: '/compliance/retention', access: COMPLIANCE, handlers: [retentionPage({ knex: db, config: deps.config })] },
    { method: 'post', path: '/compliance/retention', access: COMPLIANCE, handlers: [saveRetention({ knex: db, config: deps.config })] },
    { method: 'post', path: '/compliance/retention/run', access: COMPLIANCE, handlers: [runRetentionNow({ knex: db, config: deps.config })] },
    { method: 'get', path: '/compliance/api-requests', access: COMPLIANCE, handlers: [apiRequestsPage({ knex: db, config: deps.config })] },
    { method: 'get', path: '/compliance/holds', access: COMPLIANCE, handlers: [listHolds(db)] },
    { method: 'post', path: '/compliance/holds', access: COMPLIANCE, handlers: [placeHold(db)] },
    { method: 'post', path: '/compliance/holds/:id/lift', access: COMPLIANCE, handlers: [liftHold(db)] },
    // compliance: data-subject requests, privacy texts, security signals, account closure
    { method: 'get', path: '/compliance/requests', access: COMPLIANCE, handlers: [listRequests(db)] },
    { method: 'post', path: '/compliance/requests', access: COMPLIANCE, handlers: [registerRequest(db)] },
    { method: 'get', path: '/compliance/requests/:id', access: COMPLIANCE, handlers: [showRequest(db)] },
    { method: 'post', path: '/compliance/requests/:id/status', access: COMPLIANCE, handlers: [changeRequestStatus(db)] },
    { method: 'post', path: '/compliance/requests/:id/execute', access: COMPLIANCE, handlers: [executeRequest(recordings)] },
    { method: 'get', path: '/compliance/requests/:id/download', access: COMPLIANCE, handlers: [downloadRequest(recordings)] },
    { method: 'get', path: '/compliance/privacy', access: COMPLIANCE, handlers: [privacyPage(db)] },
    { method: 'post', path: '/compliance/privacy', access: COMPLIANCE, handlers: [savePrivacyText(db)] },
    { method: 'get', path: '/compliance/security', access: COMPLIANCE, handlers: [securityPage(db)] },
    { method: 'get', path: '/admin/organisation/close', access: ADMIN, handlers: [closurePage(db)] },
    { method: 'post', path: '/admin/organisation/close', access: ADMIN, handlers: [closeOrganisation({ knex: db, hub: deps.hub })] },

    // operations: Prometheus metrics (public in the table; metricsAccess admits only allowed addresses or the token) and the status page
    { method: 'get', path: '/metrics', access: 'public', handlers: [metricsAccess(ops), metrics(ops)] },
    { method: 'get', path: '/admin/status', access: ADMIN, handlers: [statusPage(ops)] },
  ];
}
