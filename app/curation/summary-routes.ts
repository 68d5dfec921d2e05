import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { customerAccess } from '../calls/customer-access';
import { renderClosedLink, type ClosedLink } from '../calls/link-page';
import { CallService, type Call } from '../calls/service';
import { PRIVATE_NOTES_MAX, TYPED_LIMITS } from '../calls/shared';
import { imageUrl } from '../catalog/routes';
import { isUuid, readProductImage, sendProductImage } from '../catalog/images';
import { NotFoundError } from '../core/errors';
import { flash } from '../http/flash';
import { parseBody } from '../http/forms';
import { renderPage, submitForm, type FormPage, type PageData } from '../http/form-page';
import { secretResponse } from '../http/security';
import { brandingOf, OrganisationStore } from '../organisation/service';
import { organisationTimeZone, showDatesOf } from '../organisation/time-zone';
import { CurationService } from './service';
import { clerkSummary, customerSummary, formatDate, formatDateTime, formatDuration, isShownImage } from './summary';
import { embeddableImage, summaryPdf } from './summary-pdf';

export interface SummaryDeps {
  knex: Knex;
  config: Config;
}

/** The clerk's private notes as the summary page submits them. */
export const notesSchema = z.object({
  notes: z.string().max(PRIVATE_NOTES_MAX, 'too_long').default(''),
});

const END_REASONS = ['ended_by_clerk', 'all_left', 'expired'];

/** At most this many bytes of pictures go into one PDF (a call may show 100 cards); the cards after that come without. */
const PDF_IMAGE_BYTES = 8 * 1024 * 1024;

/** The call a customer token opens here (calls/customer-access.ts): the open call, or the ended one while its summary may be seen; else what it is, with 404, or 410 for an ended call whose summary is over. */
async function customerCall(deps: SummaryDeps, token: unknown): Promise<{ call: Call; ended: boolean } | { closed: ClosedLink; status: 404 | 410 }> {
  const access = await customerAccess(new CallService(deps.knex), token, deps.config.summaryDays);
  if (access.outcome === 'open') return { call: access.call, ended: false };
  if (access.outcome === 'summary') return { call: access.call, ended: true };
  return { closed: access, status: access.outcome === 'ended' ? 410 : 404 };
}

function availableUntil(deps: SummaryDeps, call: Call, lang: string, timeZone: string): string {
  return formatDate(new Date(call.endedAt!.getTime() + deps.config.summaryDays * 86_400_000), lang, timeZone);
}

/**
 * GET /join/:token for an ended call whose summary the customer may still
 * see (calls/customer-access.ts): what the clerk showed them, with
 * the clerk's notes and their favourites; printable, and as a PDF.
 */
export async function renderCustomerSummary(deps: SummaryDeps, req: Request, res: Response, call: Call, token: string): Promise<void> {
  const organisation = await new OrganisationStore(deps.knex).byId(call.organisationId);
  const timeZone = await showDatesOf(deps.knex, res, call.organisationId);
  const summary = await customerSummary(deps.knex, call, req.lang, timeZone);
  secretResponse(res);
  res.set({ 'X-Robots-Tag': 'noindex, nofollow' }).render('curation/customer-summary', {
    title: req.t('curation.customer_title'),
    noindex: true,
    token,
    organisationName: organisation?.name ?? '',
    branding: organisation ? brandingOf(organisation) : undefined,
    date: summary.date,
    availableUntil: availableUntil(deps, call, req.lang, timeZone),
    cards: summary.cards.map((card) => ({ ...card, imageUrl: card.imageId ? `/join/${token}/images/${card.imageId}` : null })),
  });
}

/** GET /join/:token/summary.pdf: the customer's summary as a PDF download (ended calls within the summary window). */
export function customerSummaryPdf(deps: SummaryDeps): RequestHandler {
  return async (req, res) => {
    const access = await customerCall(deps, req.params.token);
    if ('closed' in access) return renderClosedLink(deps.knex, req, res, access.closed, access.status);
    if (!access.ended) throw new NotFoundError();
    const { call } = access;
    const organisation = await new OrganisationStore(deps.knex).byId(call.organisationId);
    const timeZone = await organisationTimeZone(deps.knex, call.organisationId);
    const summary = await customerSummary(deps.knex, call, req.lang, timeZone);
    const images = new Map<string, Buffer>();
    let bytes = 0;
    for (const card of summary.cards) {
      if (!card.imageId || images.has(card.imageId) || bytes >= PDF_IMAGE_BYTES) continue;
      const image = await readProductImage(deps.knex, call.organisationId, card.imageId);
      if (!image || !embeddableImage(image.data) || bytes + image.data.length > PDF_IMAGE_BYTES) continue;
      images.set(card.imageId, image.data);
      bytes += image.data.length;
    }
    const pdf = await summaryPdf({
      t: req.t,
      organisationName: organisation?.name ?? '',
      date: summary.date,
      availableUntil: availableUntil(deps, call, req.lang, timeZone),
      cards: summary.cards,
      images,
    });
    const day = (call.startedAt ?? call.endedAt ?? call.createdAt).toISOString().slice(0, 10);
    res.set({ 'Content-Type': 'application/pdf', 'Cache-Control': 'no-store', 'X-Robots-Tag': 'noindex, nofollow' });
    res.attachment(`${organisation?.slug ?? 'vclerk'}-${day}.pdf`).send(pdf);
  };
}

/**
 * GET /join/:token/images/:imageId: a picture of a card the customer is
 * shown, through their link (open call, or ended within the summary
 * window). Only images of the call's cards that were not withdrawn; anything
 * else is not found.
 */
export function customerCardImage(deps: SummaryDeps): RequestHandler {
  return async (req, res) => {
    const access = await customerCall(deps, req.params.token);
    const imageId = String(req.params.imageId);
    if ('closed' in access || !isUuid(imageId)) throw new NotFoundError();
    if (!(await isShownImage(deps.knex, access.call.id, imageId))) throw new NotFoundError();
    const image = await readProductImage(deps.knex, access.call.organisationId, imageId);
    if (!image) throw new NotFoundError();
    sendProductImage(res, image, req);
  };
}

/** The clerk's summary of an ended call (looked up by the handler), with the form for their private notes. */
function clerkSummaryPage(deps: SummaryDeps): FormPage<Call> {
  return { view: 'curation/clerk-summary', noStore: true, load: (req, call) => clerkSummaryData(deps, req, call) };
}

async function clerkSummaryData(deps: SummaryDeps, req: Request, call: Call): Promise<PageData> {
  const timeZone = await organisationTimeZone(deps.knex, call.organisationId);
  const summary = await clerkSummary(deps.knex, call, req.lang, timeZone);
  return {
    title: req.t('curation.clerk_title'),
    limits: TYPED_LIMITS,
    call: {
      id: call.id,
      reference: call.reference,
      startedAt: call.startedAt ? formatDateTime(call.startedAt, req.lang, timeZone) : null,
      endedAt: call.endedAt ? formatDateTime(call.endedAt, req.lang, timeZone) : null,
      duration: formatDuration(call, req.t) ?? null,
      endReason: END_REASONS.includes(call.endReason ?? '') ? call.endReason : 'other',
    },
    cards: summary.cards.map((card) => ({ ...card, imageUrl: card.imageId ? imageUrl(card.imageId) : null })),
    transcript: summary.transcript,
    notes: summary.notes,
  };
}

/** GET /calls/:id for an ended call: the clerk's summary of it. */
export async function renderClerkSummary(deps: SummaryDeps, req: Request, res: Response, call: Call): Promise<void> {
  await renderPage(clerkSummaryPage(deps), req, res, call);
}

/** POST /calls/:id/notes: the clerk saves their private notes of one of their calls (empty removes them). */
export function saveCallNotes(deps: SummaryDeps): RequestHandler {
  return async (req, res) => {
    const caller = callerOf(req);
    const call = await new CallService(deps.knex).getOwn(caller, String(req.params.id));
    const save = async () => {
      const input = parseBody(notesSchema, req.body);
      await new CurationService(deps.knex).saveNotes({ callId: call.id, organisationId: call.organisationId }, caller.user.id, input.notes);
      flash(req, 'success', 'curation.notes_saved');
      res.redirect(303, `/calls/${call.id}`);
    };
    // During the call the notes live on the call page; a refusal there is the plain 400.
    if (call.status !== 'ended') return save();
    await submitForm({ page: clerkSummaryPage(deps), fields: { notes: 'text' } }, req, res, call, save);
  };
}
