import type { Knex } from 'knex';
import type { Call } from '../calls/service';
import type { Translate } from '../i18n';
import { dateFormat, DEFAULT_TIME_ZONE } from '../i18n/dates';
import { CurationService, type SummaryCard } from './service';

/**
 * What the after-call summaries show, prepared for the views and the PDF:
 * prices formatted for the page's language, product links only when they
 * are plain http(s) URLs, times as text. Customer and clerk text stays
 * text: the views escape it and keep its line breaks with CSS, never as HTML.
 */

/** A card as the customer's summary (page and PDF) shows it. */
export interface CustomerCard {
  name: string;
  price: string;
  note: string;
  url: string | null;
  imageId: string | null;
  favourite: boolean;
}

/** A card as the clerk's summary shows it: withdrawn ones too. */
export interface ClerkCard extends CustomerCard {
  sku: string;
  asked: boolean;
  withdrawn: boolean;
}

export interface TranscriptLine {
  from: 'clerk' | 'customer';
  at: Date;
  time: string;
  question: boolean;
  itemName: string | null;
  body: string;
}

/** The price in the currency, as the language writes it ("1.234,50 €", "€1,234.50"). */
export function formatPrice(priceCents: number, currency: string, lang: string): string {
  const amount = priceCents / 100;
  try {
    return new Intl.NumberFormat(lang, { style: 'currency', currency }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency}`;
  }
}

/** The URL when it is an absolute http or https URL; anything else (javascript:, data:, relative) is dropped. */
export function safeLink(url: string | null): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/** In the organisation's time zone (organisation/time-zone.ts). */
export function formatDate(date: Date, lang: string, timeZone = DEFAULT_TIME_ZONE): string {
  return dateFormat(lang, timeZone).date(date, { style: 'long' });
}

export function formatDateTime(date: Date, lang: string, timeZone = DEFAULT_TIME_ZONE): string {
  return dateFormat(lang, timeZone).dateTime(date);
}

/** How long the call ran, from both being there to its end; undefined when it never started. */
export function formatDuration(call: Pick<Call, 'startedAt' | 'endedAt'>, t: Translate): string | undefined {
  if (!call.startedAt || !call.endedAt) return undefined;
  const seconds = Math.max(0, Math.round((call.endedAt.getTime() - call.startedAt.getTime()) / 1000));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (hours > 0) return t('curation.duration_hours', { hours, minutes });
  return t('curation.duration_minutes', { minutes, seconds: seconds % 60 });
}

function customerCard(card: SummaryCard, lang: string): CustomerCard {
  return {
    name: card.name,
    price: formatPrice(card.priceCents, card.currency, lang),
    note: card.note,
    url: safeLink(card.url),
    imageId: card.imageId,
    favourite: card.favourite,
  };
}

/** The customer's summary: the cards that were not withdrawn, in their order. */
export async function customerSummary(knex: Knex, call: Call, lang: string, timeZone = DEFAULT_TIME_ZONE): Promise<{ date: string; cards: CustomerCard[] }> {
  const cards = await new CurationService(knex).cards(call.id);
  return {
    date: formatDate(call.startedAt ?? call.endedAt ?? call.createdAt, lang, timeZone),
    cards: cards.map((card) => customerCard(card, lang)),
  };
}

/** The clerk's summary: every card (withdrawn ones last), the chat, and the private notes. */
export async function clerkSummary(knex: Knex, call: Call, lang: string, timeZone = DEFAULT_TIME_ZONE): Promise<{ cards: ClerkCard[]; transcript: TranscriptLine[]; notes: string }> {
  const curation = new CurationService(knex);
  const [cards, messages, notes] = await Promise.all([curation.cards(call.id, { withdrawn: true }), curation.messages(call.id), curation.notes(call.id)]);
  const time = dateFormat(lang, timeZone);
  return {
    cards: cards.map((card) => ({ ...customerCard(card, lang), sku: card.sku, asked: card.asked, withdrawn: card.withdrawnAt !== null })),
    transcript: messages.map((m) => ({
      from: m.from,
      at: new Date(m.at),
      time: time.time(m.at),
      question: m.kind === 'question',
      itemName: m.itemName,
      body: m.body,
    })),
    notes,
  };
}

export { isShownImage } from './service';
