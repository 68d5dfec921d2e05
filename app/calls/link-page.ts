import type { Request, Response } from 'express';
import type { Knex } from 'knex';
import { secretResponse } from '../http/security';
import { PrivacyContact } from '../organisation/privacy';
import { brandingOf, OrganisationStore } from '../organisation/service';
import { isOpen } from '../queue/hours';
import { QueueSettingsStore } from '../queue/settings';
import type { CustomerAccess } from './customer-access';

/** A customer link's outcome that opens nothing (any more). */
export type ClosedLink = Extract<CustomerAccess, { outcome: 'unknown' | 'revoked' | 'expired' | 'ended' }>;

/**
 * The customer's page for a link that opens nothing (any more): in the
 * organisation's branding and the visitor's language, with what to do
 * next (its queue page while the queue is open, its data-protection
 * contact where set). An unknown token, or one whose organisation is gone,
 * gets a neutral page. No staff links, no cookie, not cached, not indexed.
 */
export async function renderClosedLink(knex: Knex, req: Request, res: Response, access: ClosedLink, status: 404 | 410): Promise<void> {
  const organisation = access.outcome === 'unknown' ? undefined : await new OrganisationStore(knex).byId(access.organisationId);
  const reason = organisation ? access.outcome : 'unknown';
  const queueOpen = organisation && !organisation.closedAt ? isOpen((await new QueueSettingsStore(knex).get(organisation.id)).hours) : false;
  secretResponse(res); // the language switcher's return path holds the token
  res.status(status).set('X-Robots-Tag', 'noindex, nofollow').render('calls/link-closed', {
    title: req.t(`calls.link.${reason}_title`),
    noindex: true,
    reason,
    organisationName: organisation?.name ?? '',
    branding: organisation ? brandingOf(organisation) : undefined,
    queueUrl: organisation && queueOpen ? `/q/${organisation.slug}` : null,
    contact: organisation ? await new PrivacyContact(knex).get(organisation.id) : '',
  });
}
