import type { Knex } from 'knex';
import { MAX_CARDS, MAX_MESSAGES, type Card, type ChatMessage } from '../calls/protocol';
import { CallRefusal } from '../calls/refusal';
import { auditForeignProbe, type Prober } from '../access/scoped-service';
import { firstImageIds } from '../catalog/images';
import { lockCallStatus } from '../calls/store';
import { productForCard } from '../catalog/service';
import { type CallItemRow, type CallMessageRow } from '../db/tables';

/** The call a request is about; the signalling layer has already checked that the participant belongs to it. */
export interface CallRef {
  callId: string;
  organisationId: string;
}

/** The call of a participant (a signalling identity): only its id and organisation. */
export function callRef(who: CallRef): CallRef {
  return { callId: who.callId, organisationId: who.organisationId };
}

/** Who wrote a chat message. */
export type Sender = { role: 'clerk'; userId: string } | { role: 'customer' };

/** A card as the summaries show it: withdrawn ones too, with the times. */
export interface SummaryCard extends Card {
  shownAt: Date;
  withdrawnAt: Date | null;
}

const CARD_COLUMNS = ['id', 'product_id', 'image_id', 'sku', 'name', 'price_cents', 'currency', 'product_url', 'note', 'position', 'favourite', 'asked_at', 'shown_at', 'withdrawn_at'] as const;

function toCard(row: Pick<CallItemRow, (typeof CARD_COLUMNS)[number]>): SummaryCard {
  return {
    id: row.id,
    productId: row.product_id ?? null,
    sku: row.sku,
    name: row.name,
    priceCents: Number(row.price_cents),
    currency: row.currency,
    url: row.product_url ?? null,
    imageId: row.image_id ?? null,
    note: row.note,
    position: row.position,
    favourite: row.favourite,
    asked: row.asked_at !== null && row.asked_at !== undefined,
    shownAt: row.shown_at,
    withdrawnAt: row.withdrawn_at ?? null,
  };
}

/** The card as the participants get it over signalling (no times). */
export function liveCard(card: SummaryCard): Card {
  const { shownAt: _shown, withdrawnAt: _withdrawn, ...rest } = card;
  return rest;
}

function toMessage(row: Pick<CallMessageRow, 'id' | 'sender' | 'kind' | 'item_id' | 'body' | 'created_at'> & { item_name: string | null }): ChatMessage {
  return {
    id: row.id,
    from: row.sender,
    kind: row.kind,
    itemId: row.item_id ?? null,
    itemName: row.item_name ?? null,
    body: row.body,
    at: row.created_at.toISOString(),
  };
}

/** Text as stored: trimmed, without control characters other than line breaks and tabs. */
export function cleanText(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '').trim();
}

/**
 * What happens between clerk and customer besides the media: the products
 * the clerk shows (cards), the chat, and the clerk's private notes. Every
 * change checks that the call is still open and belongs to the
 * organisation; cards are numbered by `position` (0, 1, ...) among the
 * shown ones. Nothing here is audited: it is the call's content, kept
 * with the call under the retention settings, not a security event.
 */
export class CurationService {
  constructor(private readonly knex: Knex) {}

  /** The cards shown now, in order (withdrawn ones too when asked, after them). */
  async cards(callId: string, options: { withdrawn?: boolean } = {}, trx: Knex | Knex.Transaction = this.knex): Promise<SummaryCard[]> {
    const query = trx('call_items').where({ call_id: callId });
    if (!options.withdrawn) query.whereNull('withdrawn_at');
    const rows = await query.orderByRaw('withdrawn_at IS NOT NULL, position, shown_at').select(...CARD_COLUMNS);
    return rows.map(toCard);
  }

  async messages(callId: string): Promise<ChatMessage[]> {
    const rows = await this.knex('call_messages as m')
      .leftJoin('call_items as i', 'i.id', 'm.item_id')
      .where('m.call_id', callId)
      .orderBy([{ column: 'm.created_at' }, { column: 'm.id' }])
      .select('m.id', 'm.sender', 'm.kind', 'm.item_id', 'm.body', 'm.created_at', 'i.name as item_name');
    return (rows as Parameters<typeof toMessage>[0][]).map(toMessage);
  }

  async notes(callId: string): Promise<string> {
    const row = await this.knex('call_notes').where({ call_id: callId }).first('body');
    return row?.body ?? '';
  }

  /** A product id that is another organisation's: audited in both organisations' trails (the request answers not_found). */
  async auditForeignProduct(prober: Prober, productId: string): Promise<void> {
    await auditForeignProbe(this.knex, prober, 'products', 'product', productId);
  }

  /**
   * Shows a product of the organisation's catalog (active ones only) as a
   * new last card; a product shown before and withdrawn comes back, with
   * the current catalog data; one already shown stays where it is.
   */
  async show(ref: CallRef, productId: string, note?: string): Promise<Card> {
    return this.knex.transaction(async (trx) => {
      await this.lockOpenCall(trx, ref);
      const product = await productForCard(trx, ref.organisationId, productId);
      if (!product) throw new CallRefusal('not_found');
      const existing = await trx('call_items').where({ call_id: ref.callId, product_id: productId }).first('id', 'withdrawn_at', 'note');
      if (existing && !existing.withdrawn_at) {
        if (note !== undefined) await trx('call_items').where({ id: existing.id }).update({ note: cleanText(note), updated_at: trx.fn.now() });
        return liveCard((await this.card(trx, existing.id))!);
      }
      const shown = await trx('call_items').where({ call_id: ref.callId }).whereNull('withdrawn_at').count<{ count: string }[]>({ count: '*' });
      if (Number(shown[0]!.count) >= MAX_CARDS) throw new CallRefusal('limit_reached');
      const images = await firstImageIds(trx, ref.organisationId, [productId]);
      const values = {
        sku: product.sku,
        name: product.name,
        price_cents: product.price_cents,
        currency: product.currency,
        product_url: product.product_url,
        image_id: images.get(productId) ?? null,
        position: Number(shown[0]!.count),
        shown_at: trx.fn.now(),
        withdrawn_at: null,
        updated_at: trx.fn.now(),
      };
      let id: string;
      if (existing) {
        id = existing.id;
        await trx('call_items').where({ id }).update({ ...values, note: note === undefined ? existing.note : cleanText(note) });
      } else {
        const [row] = (await trx('call_items')
          .insert({ organisation_id: ref.organisationId, call_id: ref.callId, product_id: productId, note: cleanText(note ?? ''), ...values })
          .returning('id'));
        id = row!.id;
      }
      return liveCard((await this.card(trx, id))!);
    });
  }

  async setNote(ref: CallRef, itemId: string, note: string): Promise<void> {
    await this.changeShown(ref, itemId, { note: cleanText(note) });
  }

  async withdraw(ref: CallRef, itemId: string): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await this.lockOpenCall(trx, ref);
      const updated = await trx('call_items').where({ id: itemId, call_id: ref.callId }).whereNull('withdrawn_at').update({ withdrawn_at: trx.fn.now(), updated_at: trx.fn.now() });
      if (updated === 0) throw new CallRefusal('not_found');
      await this.renumber(trx, ref.callId);
    });
  }

  /** New order of the shown cards: `itemIds` must name each of them exactly once. */
  async reorder(ref: CallRef, itemIds: string[]): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await this.lockOpenCall(trx, ref);
      const shown = (await trx('call_items').where({ call_id: ref.callId }).whereNull('withdrawn_at').pluck('id'));
      const wanted = new Set(itemIds);
      if (wanted.size !== itemIds.length || wanted.size !== shown.length || !shown.every((id) => wanted.has(id))) throw new CallRefusal('invalid_message');
      for (const [position, id] of itemIds.entries()) await trx('call_items').where({ id }).update({ position, updated_at: trx.fn.now() });
    });
  }

  async favourite(ref: CallRef, itemId: string, favourite: boolean): Promise<void> {
    await this.changeShown(ref, itemId, { favourite });
  }

  /** The customer asks about a card: the card is marked, and the question joins the chat. */
  async ask(ref: CallRef, itemId: string, text = ''): Promise<ChatMessage> {
    return this.knex.transaction(async (trx) => {
      await this.lockOpenCall(trx, ref);
      const updated = await trx('call_items').where({ id: itemId, call_id: ref.callId }).whereNull('withdrawn_at').update({ asked_at: trx.fn.now(), updated_at: trx.fn.now() });
      if (updated === 0) throw new CallRefusal('not_found');
      return this.insertMessage(trx, ref, { role: 'customer' }, 'question', cleanText(text), itemId);
    });
  }

  async send(ref: CallRef, sender: Sender, text: string): Promise<ChatMessage> {
    const body = cleanText(text);
    if (body === '') throw new CallRefusal('invalid_message');
    return this.knex.transaction(async (trx) => {
      await this.lockOpenCall(trx, ref);
      return this.insertMessage(trx, ref, sender, 'text', body, null);
    });
  }

  /** The clerk's private notes (the whole text; empty removes them). Also after the call, from the summary page. */
  async saveNotes(ref: CallRef, userId: string, text: string): Promise<void> {
    const body = text.replace(/\r\n?/g, '\n').trim();
    if (body === '') {
      await this.knex('call_notes').where({ call_id: ref.callId, organisation_id: ref.organisationId }).delete();
      return;
    }
    await this.knex('call_notes')
      .insert({ call_id: ref.callId, organisation_id: ref.organisationId, body, updated_by: userId })
      .onConflict('call_id')
      .merge({ body, updated_by: userId, updated_at: this.knex.fn.now() });
  }

  private async insertMessage(trx: Knex.Transaction, ref: CallRef, sender: Sender, kind: 'text' | 'question', body: string, itemId: string | null): Promise<ChatMessage> {
    const [counted] = await trx('call_messages').where({ call_id: ref.callId }).count<{ count: string }[]>({ count: '*' });
    if (Number(counted!.count) >= MAX_MESSAGES) throw new CallRefusal('limit_reached');
    const [row] = await trx('call_messages')
      .insert({ organisation_id: ref.organisationId, call_id: ref.callId, sender: sender.role, user_id: sender.role === 'clerk' ? sender.userId : null, kind, item_id: itemId, body })
      .returning(['id', 'sender', 'kind', 'item_id', 'body', 'created_at']);
    const item = itemId ? await trx('call_items').where({ id: itemId }).first('name') : undefined;
    return toMessage({ ...row!, item_name: item?.name ?? null });
  }

  private async changeShown(ref: CallRef, itemId: string, change: Record<string, unknown>): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await this.lockOpenCall(trx, ref);
      const updated = await trx('call_items').where({ id: itemId, call_id: ref.callId }).whereNull('withdrawn_at').update({ ...change, updated_at: trx.fn.now() });
      if (updated === 0) throw new CallRefusal('not_found');
    });
  }

  /** Positions 0..n-1 again after a card left the row. */
  private async renumber(trx: Knex.Transaction, callId: string): Promise<void> {
    await trx.raw(
      `UPDATE call_items SET position = numbered.n - 1
         FROM (SELECT id, row_number() OVER (ORDER BY position, shown_at) AS n FROM call_items WHERE call_id = ? AND withdrawn_at IS NULL) AS numbered
        WHERE call_items.id = numbered.id`,
      [callId],
    );
  }

  private async card(trx: Knex.Transaction, id: string): Promise<SummaryCard | undefined> {
    const row = await trx('call_items').where({ id }).first(...CARD_COLUMNS);
    return row ? toCard(row) : undefined;
  }

  /** Serialises changes to one call's cards and refuses them once the call has ended. */
  private async lockOpenCall(trx: Knex.Transaction, ref: CallRef): Promise<void> {
    const status = await lockCallStatus(trx, ref.organisationId, ref.callId);
    if (!status) throw new CallRefusal('not_found');
    if (status === 'ended') throw new CallRefusal('call_ended');
  }
}

// --- For other features (their transaction passed in) ------------------------

/** Whether an image belongs to a card of the call that the customer still sees (not withdrawn). */
export async function isShownImage(knex: Knex, callId: string, imageId: string): Promise<boolean> {
  const row = await knex('call_items').where({ call_id: callId, image_id: imageId }).whereNull('withdrawn_at').first('id');
  return row !== undefined;
}

/** A call's content as a data-subject access export shows it. */
export async function exportedCuration(knex: Knex, callId: string) {
  return {
    selections: await knex('call_items').where({ call_id: callId }).orderBy('position').select('sku', 'name', 'price_cents', 'currency', 'product_url', 'note', 'position', 'favourite', 'asked_at', 'shown_at', 'withdrawn_at'),
    chat: await knex('call_messages').where({ call_id: callId }).orderBy('created_at').select('sender', 'kind', 'body', 'item_id', 'created_at'),
    notes: await knex('call_notes').where({ call_id: callId }).select('body', 'updated_at'),
  };
}

/** Erasure: deletes a call's chat, cards and notes; returns how many of each. */
export async function eraseCuration(trx: Knex.Transaction, callId: string): Promise<{ messages: number; items: number; notes: number }> {
  const messages = await trx('call_messages').where({ call_id: callId }).delete();
  const items = await trx('call_items').where({ call_id: callId }).delete();
  const notes = await trx('call_notes').where({ call_id: callId }).delete();
  return { messages, items, notes };
}

/** What retention deletes of a call's content, each kind with its table and the key its rows are deleted by. */
const CONTENT = {
  chat: { table: 'call_messages', key: 'id' },
  notes: { table: 'call_notes', key: 'call_id' },
  selections: { table: 'call_items', key: 'id' },
} as const;

export type CurationContent = keyof typeof CONTENT;

/** Retention: the organisation's rows of one kind of content of the calls `dueCalls` selects. */
export function curationOfCalls(knex: Knex, content: CurationContent, organisationId: string, dueCalls: Knex.QueryBuilder): Knex.QueryBuilder {
  return knex(CONTENT[content].table).where('organisation_id', organisationId).whereIn('call_id', dueCalls);
}

/** Retention: the key column `curationOfCalls` rows are deleted by. */
export function curationKey(content: CurationContent): string {
  return CONTENT[content].key;
}

/** Retention: deletes the rows whose key `batch` selects; returns how many. */
export async function deleteCuration(knex: Knex, content: CurationContent, batch: Knex.QueryBuilder): Promise<number> {
  return knex(CONTENT[content].table).whereIn(CONTENT[content].key, batch).del();
}

