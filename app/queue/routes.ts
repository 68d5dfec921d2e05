import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { sha256 } from '../security/tokens';
import { NotFoundError, TooManyRequestsError } from '../core/errors';
import { limiterFor, rateLimited } from '../http/limiter';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { formAction } from '../http/form-page';
import { organisationForms } from '../organisation/routes';
import { dashboardForms } from '../dashboard/routes';
import { PrivacyContact } from '../organisation/privacy';
import { brandingOf, OrganisationStore } from '../organisation/service';
import { hoursFromForm, isOpen, queueSettingsSchema, weekdays, type OpeningHours } from './hours';
import { availabilitySchema, QueueService } from './service';
import { OpenTicketLimit } from './client-limit';
import { QueueSettingsStore } from './settings';

export interface QueueDeps {
  knex: Knex;
  config: Config;
}

async function openOrganisation(knex: Knex, slug: unknown) {
  const organisation = typeof slug === 'string' ? await new OrganisationStore(knex).bySlug(slug) : undefined;
  if (!organisation || organisation.closedAt) throw new NotFoundError();
  return organisation;
}

/** Whether customers can enter now: within opening hours and with a clerk available. */
async function queueState(knex: Knex, organisationId: string): Promise<{ available: number; open: boolean; hours: OpeningHours | undefined }> {
  const { hours } = await new QueueSettingsStore(knex).get(organisationId);
  const open = isOpen(hours);
  return { open, hours, available: open ? await new QueueService(knex).availableClerks(organisationId) : 0 };
}

/** GET /q/:slug: the organisation's public queue page (linked from its website widget). */
export function queueLanding(deps: QueueDeps): RequestHandler {
  return async (req, res) => {
    const organisation = await openOrganisation(deps.knex, req.params.slug);
    const state = await queueState(deps.knex, organisation.id);
    res.set('Cache-Control', 'no-store').render('queue/landing', { title: req.t('queue.title'), organisation, ...state, weekdays, via: channelOf(req.query.via), branding: brandingOf(organisation), privacyContact: await new PrivacyContact(deps.knex).get(organisation.id) });
  };
}

/** How the customer came to the queue: the website widget opens the page with `?via=widget` (carried by the form); anything else is the queue's own page. */
function channelOf(via: unknown): 'queue' | 'widget' {
  return via === 'widget' ? 'widget' : 'queue';
}

/**
 * POST /q/:slug: enters the queue; the ticket travels in the URL fragment
 * only. One client IP may enter at the refusal limiter's rate (per IP,
 * before any database work) and hold at most `queueTicketsPerIp` waiting
 * tickets per organisation: more answer 429 `queue_limit`.
 */
export function enterQueue(deps: QueueDeps): RequestHandler {
  let openTickets: OpenTicketLimit | undefined;
  return async (req, res) => {
    openTickets ??= new OpenTicketLimit(deps.knex, deps.config.queueTicketsPerIp);
    const slot = limiterFor(deps.knex).take('queue_entry', req.ip);
    if (!slot.ok) throw rateLimited(deps.knex, req, 'queue_entry', slot.retryAfterSeconds);
    const organisation = await openOrganisation(deps.knex, req.params.slug);
    const state = await queueState(deps.knex, organisation.id);
    if (state.available === 0) {
      return res.status(409).render('queue/landing', { title: req.t('queue.title'), organisation, ...state, weekdays, via: channelOf(req.body?.via), branding: brandingOf(organisation) });
    }
    const place = await openTickets.reserve(organisation.id, req.ip);
    if (!place) {
      res.setHeader('Retry-After', '60');
      throw new TooManyRequestsError('queue_limit');
    }
    try {
      const { ticket } = await new QueueService(deps.knex).enter(organisation.id, channelOf(req.body?.via));
      place.commit(sha256(ticket));
      res.redirect(303, `/q/${organisation.slug}/wait#ticket=${ticket}`);
    } catch (err) {
      place.cancel();
      throw err;
    }
  };
}

/** GET /q/:slug/wait: the waiting page; its script polls the ticket's status. */
export function waitingPage(deps: QueueDeps): RequestHandler {
  return async (req, res) => {
    const organisation = await openOrganisation(deps.knex, req.params.slug);
    res.set('Cache-Control', 'no-store').render('queue/wait', { title: req.t('queue.title'), organisation, branding: brandingOf(organisation) });
  };
}

function ticketOf(req: Parameters<RequestHandler>[0]): string | undefined {
  const value = req.get('x-queue-ticket');
  return value && value.length <= 100 ? value : undefined;
}

/** GET /queue/ticket (header X-Queue-Ticket): position and estimate, or where to join. */
export function ticketStatus(deps: QueueDeps): RequestHandler {
  return async (req, res) => {
    const status = await new QueueService(deps.knex).status(ticketOf(req));
    if (!status) throw new NotFoundError('ticket_unknown');
    res.set('Cache-Control', 'no-store').json(status);
  };
}

/** POST /queue/ticket/leave (header X-Queue-Ticket) */
export function leaveQueue(deps: QueueDeps): RequestHandler {
  return async (req, res) => {
    await new QueueService(deps.knex).leave(ticketOf(req));
    res.json({ status: 'left' });
  };
}

/** GET /queue.json: the live queue for clerks' dashboards. */
export function liveQueue(deps: QueueDeps): RequestHandler {
  return async (req, res) => {
    const caller = callerOf(req);
    const queue = new QueueService(deps.knex);
    const entries = await queue.list(caller);
    res.set('Cache-Control', 'no-store').json({
      entries: entries.map((e) => ({ id: e.id, label: e.label, waitingSince: e.waitingSince.toISOString() })),
      availableClerks: await queue.availableClerks(caller.user.organisationId),
      availability: await queue.availability(caller),
      assignedCallId: (await queue.assignedCall(caller)) ?? null,
    });
  };
}

/** POST /queue/accept (optional entry_id): takes the next or the chosen customer into a new call, which the clerk's call page joins at once. */
export function acceptFromQueue(deps: QueueDeps): RequestHandler {
  return async (req, res) => {
    const entryId = typeof req.body?.entry_id === 'string' && req.body.entry_id !== '' ? req.body.entry_id : undefined;
    const { callId } = await new QueueService(deps.knex).accept(callerOf(req), entryId, deps.config.callLinkHours);
    // The clerk chose to talk: the call page joins at once (client/call/autojoin.ts).
    res.redirect(303, `/calls/${callId}#autojoin`);
  };
}

/** POST /admin/organisation/queue: opening hours and automatic routing (off unless chosen). */
export function saveQueueSettings(deps: QueueDeps): RequestHandler {
  return formAction(organisationForms(deps.knex).queue, async (req, res) => {
    const input = parseBody(queueSettingsSchema, req.body) as Record<string, string | undefined>;
    await new QueueSettingsStore(deps.knex).save(callerOf(req), hoursFromForm(input), input.auto_routing === 'on');
    flash(req, 'success', 'queue.settings_saved');
    res.redirect(303, '/admin/organisation');
  });
}

/** POST /availability: the clerk is available, busy or away. */
export function setAvailability(deps: QueueDeps): RequestHandler {
  return formAction(dashboardForms(deps.knex, deps.config).availability, async (req, res) => {
    const { availability } = parseBody(availabilitySchema, req.body);
    await new QueueService(deps.knex).setAvailability(callerOf(req), availability);
    flash(req, 'success', 'queue.availability_saved');
    res.redirect(303, '/dashboard');
  });
}
