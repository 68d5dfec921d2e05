import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { flash } from '../http/flash';
import { publicBase } from '../http/links';
import { PrivacyContact } from '../organisation/privacy';
import { PrivacyTexts } from '../privacy-texts/service';
import { brandingOf, OrganisationStore } from '../organisation/service';
import { showDatesOf } from '../organisation/time-zone';
import type { CallHub } from './hub';
import { parseBody } from '../http/forms';
import { timeZoneOf } from '../http/i18n';
import { wallTimeToIso } from '../i18n/dates';
import { formAction } from '../http/form-page';
import { dashboardForms } from '../dashboard/routes';
import { secretResponse } from '../http/security';
import { customerAccess } from './customer-access';
import { renderClosedLink } from './link-page';
import { qrSvg } from './link-qr';
import type { CallLinkTokens } from './link-token';
import { CallService, callLinkSchema } from './service';
import { TYPED_LIMITS } from './shared';
import { CatalogService } from '../catalog/service';
import { organisationRecordingNotice, RecordingPolicyStore } from '../recordings/policy';
import { renderClerkSummary, renderCustomerSummary } from '../curation/summary-routes';

export interface CallDeps {
  knex: Knex;
  config: Config;
  hub?: CallHub;
  /** Derives customer tokens the clerk can be shown again (link-token.ts). */
  links?: CallLinkTokens;
}

/**
 * POST /calls: a clerk starts a call and is sent to its page. The
 * customer's token travels only in the URL fragment (`#customer=...`),
 * which browsers never send to a server or put in a log; the page shows
 * the link from it. Only the token's hash is stored. Full call-link
 * management arrives with the customer-access feature.
 */
export function startCall(deps: CallDeps): RequestHandler {
  return formAction(dashboardForms(deps.knex, deps.config).startCall, async (req, res) => {
    const input = parseBody(callLinkSchema, req.body);
    // The form's time (datetime-local) is the organisation's wall time.
    if (input.scheduled_at) input.scheduled_at = wallTimeToIso(input.scheduled_at, timeZoneOf(res));
    const { call, token } = await new CallService(deps.knex, deps.links).start(callerOf(req), deps.config.callLinkHours, input);
    res.redirect(303, `/calls/${call.id}#customer=${token}`);
  });
}

/** What a call page needs to know about recording: the policy, and the notice in the page's language. */
async function recordingForPage(knex: Knex, organisationId: string, lang: string) {
  const policy = await new RecordingPolicyStore(knex).get(organisationId);
  return { mode: policy.mode, allowUnrecorded: policy.allowUnrecorded, notice: await organisationRecordingNotice(knex, organisationId, lang) };
}

/** POST /calls/:id/revoke: the customer link stops working (the call itself goes on). */
export function revokeCallLink(deps: CallDeps): RequestHandler {
  return async (req, res) => {
    await new CallService(deps.knex).revokeLink(callerOf(req), String(req.params.id));
    flash(req, 'success', 'calls.link_revoked_flash');
    res.redirect(303, '/dashboard');
  };
}

/**
 * GET /calls/:id/link: the customer link of one of the clerk's calls shown
 * again (after the call's tab was closed), with a copy button and a QR code,
 * while it opens the call; else why not. Others' calls are not found.
 */
export function callLinkPage(deps: CallDeps): RequestHandler {
  return async (req, res) => {
    const view = await new CallService(deps.knex, deps.links).showLink(callerOf(req), String(req.params.id));
    const link = view.state === 'open' ? `${publicBase(req, deps.config)}/join/${view.token}` : null;
    secretResponse(res);
    res.render('calls/link-show', {
      title: req.t('calls.show_link.title'),
      call: { id: view.call.id, reference: view.call.reference, status: view.call.status, expiresAt: view.call.guestTokenExpiresAt },
      state: view.state,
      link,
      qr: link ? await qrSvg(link) : null,
    });
  };
}

/** GET /calls/:id: the clerk's call page (their own calls only); once ended, the clerk's summary of it. */
export function clerkCallPage(deps: CallDeps): RequestHandler {
  return async (req, res) => {
    const caller = callerOf(req);
    const call = await new CallService(deps.knex).getOwn(caller, String(req.params.id));
    if (call.status === 'ended') return renderClerkSummary(deps, req, res, call);
    res.set('Cache-Control', 'no-store').render('calls/clerk', {
      // The tab names the call: its reference, else the start of its id ("Call 3F2A9C").
      title: req.t('calls.clerk_title_named', { name: call.reference || call.id.slice(0, 6).toUpperCase() }),
      bodyClass: 'call-page',
      call: { id: call.id, status: call.status, linkBase: `${publicBase(req, deps.config)}/join/` },
      categories: await new CatalogService(deps.knex, caller).categories(),
      recording: await recordingForPage(deps.knex, call.organisationId, req.lang),
      limits: TYPED_LIMITS,
    });
  };
}

/** POST /calls/:id/end: the clerk ends the call for everyone. */
export function endCall(deps: CallDeps): RequestHandler {
  return async (req, res) => {
    const caller = callerOf(req);
    await new CallService(deps.knex).endByClerk(caller, String(req.params.id));
    await deps.hub?.endCall(String(req.params.id), 'ended_by_clerk');
    flash(req, 'success', 'calls.ended_flash');
    res.redirect(303, '/dashboard');
  };
}

/**
 * GET /join/:token: the customer's call page, opened from the link; after
 * the call, for `summaryDays` days, the customer's summary of it.
 */
export function customerCallPage(deps: CallDeps): RequestHandler {
  return async (req, res) => {
    const access = await customerAccess(new CallService(deps.knex), req.params.token, deps.config.summaryDays);
    if (access.outcome === 'summary') return renderCustomerSummary(deps, req, res, access.call, String(req.params.token));
    if (access.outcome !== 'open') {
      // An ended call (revoked or not) answers 410, a link that opens nothing else 404.
      const gone = access.outcome === 'ended' || (access.outcome === 'revoked' && access.ended);
      return renderClosedLink(deps.knex, req, res, access, gone ? 410 : 404);
    }
    const found = access;
    await showDatesOf(deps.knex, res, found.call.organisationId);
    const organisation = await new OrganisationStore(deps.knex).byId(found.call.organisationId);
    secretResponse(res);
    res.render('calls/customer', {
      recording: await recordingForPage(deps.knex, found.call.organisationId, req.lang),
      limits: TYPED_LIMITS,
      title: req.t('calls.customer_title'),
      bodyClass: 'call-page',
      token: req.params.token,
      organisationName: organisation?.name ?? '',
      branding: organisation ? brandingOf(organisation) : undefined,
      privacyContact: await new PrivacyContact(deps.knex).get(found.call.organisationId),
      privacyNotice: (await new PrivacyTexts(deps.knex).latest(found.call.organisationId, 'privacy_notice', req.lang === 'de' ? 'de' : 'en'))?.text ?? '',
    });
  };
}
