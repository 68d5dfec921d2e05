import type { Card } from '../../app/calls/protocol';
import { NOTE_MAX } from '../../app/calls/shared';
import type { Role, Translate } from './page';

/** What a card's buttons ask for; the curation module sends the requests. */
export interface CardActions {
  saveNote(itemId: string, note: string): Promise<void>;
  move(itemId: string, by: -1 | 1): void;
  withdraw(itemId: string): void;
  favourite(itemId: string, favourite: boolean): void;
  ask(itemId: string): void;
}

/** A price in the page's language, e.g. "€1,234.50" or "1.234,50 €". */
export function formatMoney(cents: number, currency: string): string {
  const lang = document.documentElement.lang || 'en';
  try {
    return new Intl.NumberFormat(lang, { style: 'currency', currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/** Only http(s) links are ever made clickable (the catalog allows nothing else either). */
export function safeUrl(url: string | null): string | null {
  return url && /^https?:\/\//i.test(url) ? url : null;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(className: string, text: string): HTMLButtonElement {
  const b = el('button', className, text);
  b.type = 'button';
  return b;
}

interface Entry {
  item: HTMLLIElement;
  card: Card;
  image: HTMLImageElement;
  name: HTMLElement;
  price: HTMLElement;
  note: HTMLElement;
  link: HTMLAnchorElement;
  favourite: HTMLButtonElement | HTMLElement;
  asked: HTMLButtonElement | HTMLElement;
  noteInput?: HTMLTextAreaElement;
  noteSaved?: HTMLElement;
  up?: HTMLButtonElement;
  down?: HTMLButtonElement;
}

/**
 * The cards beside the video, for either side. Every text goes in with
 * textContent, so nothing a clerk, customer or catalog import typed can
 * become markup. Cards are kept by id and updated in place, so a note the
 * clerk is typing survives updates from the other side.
 */
export class CardList {
  private readonly entries = new Map<string, Entry>();
  private cards: Card[] = [];
  /** Whether the first render (the state after joining) has happened: only later cards count as new. */
  private rendered = false;

  constructor(
    private readonly list: HTMLOListElement,
    private readonly empty: HTMLElement,
    private readonly role: Role,
    private readonly t: Translate,
    private readonly imageUrl: (imageId: string) => string,
    private readonly actions: CardActions,
  ) {}

  /** The cards in their current order. */
  get current(): readonly Card[] {
    return this.cards;
  }

  /**
   * Shows the cards in order. Cards not seen before (after the first render)
   * fire `vclerk:new-cards` on the list with their number (the unread badge, panels.ts).
   */
  render(cards: Card[]): void {
    const fresh = this.rendered ? cards.filter((c) => !this.entries.has(c.id)).length : 0;
    this.rendered = true;
    this.cards = cards;
    const keep = new Set(cards.map((c) => c.id));
    for (const [id, entry] of this.entries) {
      if (!keep.has(id)) {
        entry.item.remove();
        this.entries.delete(id);
      }
    }
    cards.forEach((card, index) => {
      const entry = this.entries.get(card.id) ?? this.create(card);
      this.update(entry, card, index, cards.length);
      this.list.append(entry.item); // moves it into place
    });
    this.empty.hidden = cards.length > 0;
    if (fresh > 0) this.list.dispatchEvent(new CustomEvent('vclerk:new-cards', { detail: fresh }));
  }

  private create(card: Card): Entry {
    const item = el('li', 'card');
    item.dataset.itemId = card.id;
    const image = el('img', 'card-image');
    image.alt = '';
    image.loading = 'lazy';
    const body = el('div', 'card-body');
    const name = el('h3', 'card-name');
    const price = el('p', 'card-price');
    const note = el('p', 'card-note');
    const link = el('a', 'card-link', this.t('card_link'));
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    body.append(name, price, note, link);
    const actions = el('div', 'card-actions');
    const entry: Entry = { item, card, image, name, price, note, link, favourite: el('span', ''), asked: el('span', '') };

    if (this.role === 'customer') {
      const favourite = button('card-favourite secondary', this.t('card_favourite'));
      favourite.addEventListener('click', () => this.actions.favourite(entry.card.id, !entry.card.favourite));
      const asked = button('card-ask secondary', this.t('card_ask'));
      asked.addEventListener('click', () => this.actions.ask(entry.card.id));
      actions.append(favourite, asked);
      entry.favourite = favourite;
      entry.asked = asked;
    } else {
      const badges = el('p', 'card-badges');
      entry.favourite = el('span', 'badge badge-favourite', this.t('card_customer_favourite'));
      entry.asked = el('span', 'badge badge-asked', this.t('card_customer_asked'));
      badges.append(entry.favourite, entry.asked);
      body.insertBefore(badges, note);
      note.hidden = true; // the clerk edits the note in the field below

      const label = el('label', 'card-note-label', this.t('card_note_label'));
      const noteInput = el('textarea', 'card-note-input');
      noteInput.rows = 2;
      noteInput.maxLength = NOTE_MAX;
      label.append(noteInput);
      const save = button('card-save-note secondary', this.t('card_note_save'));
      const saved = el('small', 'card-note-saved');
      saved.setAttribute('role', 'status');
      save.addEventListener('click', () => {
        save.disabled = true;
        this.actions
          .saveNote(entry.card.id, noteInput.value)
          .then(() => {
            delete noteInput.dataset.dirty;
            saved.textContent = this.t('card_note_saved');
          })
          .catch(() => undefined)
          .finally(() => (save.disabled = false));
      });
      noteInput.addEventListener('input', () => {
        noteInput.dataset.dirty = 'true';
        saved.textContent = '';
      });
      const up = button('card-up secondary outline', this.t('card_up'));
      up.addEventListener('click', () => this.actions.move(entry.card.id, -1));
      const down = button('card-down secondary outline', this.t('card_down'));
      down.addEventListener('click', () => this.actions.move(entry.card.id, 1));
      const withdraw = button('card-withdraw secondary', this.t('card_withdraw'));
      withdraw.addEventListener('click', () => this.actions.withdraw(entry.card.id));
      body.append(label);
      actions.append(save, saved, up, down, withdraw);
      Object.assign(entry, { noteInput, noteSaved: saved, up, down });
    }
    body.append(actions);
    item.append(image, body);
    this.entries.set(card.id, entry);
    return entry;
  }

  private update(entry: Entry, card: Card, index: number, count: number): void {
    entry.card = card;
    entry.item.dataset.favourite = String(card.favourite);
    entry.item.dataset.asked = String(card.asked);
    if (card.imageId) {
      const src = this.imageUrl(card.imageId);
      if (entry.image.getAttribute('src') !== src) entry.image.src = src;
      entry.image.hidden = false;
    } else {
      entry.image.removeAttribute('src');
      entry.image.hidden = true;
    }
    entry.name.textContent = card.name;
    entry.price.textContent = formatMoney(card.priceCents, card.currency);
    const url = safeUrl(card.url);
    entry.link.hidden = url === null;
    if (url) entry.link.href = url;
    else entry.link.removeAttribute('href');

    if (this.role === 'customer') {
      entry.note.textContent = card.note;
      entry.note.hidden = card.note === '';
      const favourite = entry.favourite as HTMLButtonElement;
      favourite.setAttribute('aria-pressed', String(card.favourite));
      favourite.textContent = this.t(card.favourite ? 'card_favourite_marked' : 'card_favourite');
      const asked = entry.asked as HTMLButtonElement;
      asked.textContent = this.t(card.asked ? 'card_asked' : 'card_ask');
    } else {
      entry.favourite.hidden = !card.favourite;
      entry.asked.hidden = !card.asked;
      const input = entry.noteInput!;
      // A note being typed stays; otherwise the field shows what is saved.
      if (!input.dataset.dirty && document.activeElement !== input) input.value = card.note;
      entry.up!.disabled = index === 0;
      entry.down!.disabled = index === count - 1;
    }
  }
}
