import type { Card } from '../../app/calls/protocol';
import { CardList } from './cards';
import { CatalogSearch } from './catalog-search';
import { ChatPanel, NotesPanel } from './chat';
import type { PageConfig, Translate } from './page';
import { errorCode, type Signalling } from './signalling';

function byId<T extends HTMLElement>(id: string, type: { new (): T }): T | null {
  const el = document.getElementById(id);
  return el instanceof type ? el : null;
}

/**
 * Curation and chat in the call: wires the panel's parts to the signalling
 * requests and events. The server holds the truth; after (re)joining the
 * page asks for everything (`curation.sync`), then follows the events.
 */
export class Curation {
  private readonly cards: CardList;
  private readonly chat: ChatPanel;
  private readonly notes: NotesPanel | null = null;
  private readonly search: CatalogSearch | null = null;
  private readonly problem: HTMLElement;

  constructor(private readonly signalling: Signalling, config: PageConfig, private readonly t: Translate) {
    const imageUrl = (imageId: string) =>
      'token' in config.auth ? `/join/${encodeURIComponent(config.auth.token)}/images/${encodeURIComponent(imageId)}` : `/catalog/images/${encodeURIComponent(imageId)}`;
    this.problem = document.createElement('p');
    this.problem.className = 'curation-problem';
    this.problem.setAttribute('role', 'alert');
    this.problem.hidden = true;
    document.getElementById('curation')?.prepend(this.problem);

    this.cards = new CardList(byId('cards', HTMLOListElement)!, byId('cards-empty', HTMLElement)!, config.role, t, imageUrl, {
      saveNote: async (itemId, note) => {
        await this.request(() => signalling.request('curation.note', { itemId, note }));
      },
      move: (itemId, by) => void this.move(itemId, by),
      withdraw: (itemId) => void this.request(() => signalling.request('curation.withdraw', { itemId })).catch(() => undefined),
      favourite: (itemId, favourite) => void this.request(() => signalling.request('curation.favourite', { itemId, favourite })).catch(() => undefined),
      ask: (itemId) => void this.request(() => signalling.request('curation.ask', { itemId })).catch(() => undefined),
    });
    this.chat = new ChatPanel(byId('chat-log', HTMLOListElement)!, byId('chat-form', HTMLFormElement)!, byId('chat-input', HTMLInputElement)!, config.role, t, async (text) => {
      const { message } = await this.request(() => signalling.request('chat.send', { text }));
      this.chat.add(message);
    });

    const notesField = byId('private-notes', HTMLTextAreaElement);
    if (notesField) {
      this.notes = new NotesPanel(notesField, byId('notes-status', HTMLElement)!, t, async (text) => {
        await this.request(() => signalling.request('notes.save', { text }));
      });
    }
    const searchInput = byId('catalog-search', HTMLInputElement);
    if (searchInput) {
      this.search = new CatalogSearch(searchInput, byId('catalog-category', HTMLSelectElement)!, byId('catalog-status', HTMLElement)!, byId('catalog-results', HTMLUListElement)!, t, async (productId) => {
        await this.request(() => signalling.request('curation.show', { productId }));
      });
    }

    signalling.on('curation.cards', ({ cards }) => this.showCards(cards));
    signalling.on('chat.message', (message) => this.chat.add(message));
  }

  /** Fetches the state after joining (and after every rejoin). */
  sync(): void {
    this.signalling
      .request('curation.sync', {})
      .then((state) => {
        this.showCards(state.cards);
        this.chat.reset(state.messages);
        if (state.notes !== undefined) this.notes?.reset(state.notes);
        this.search?.start();
      })
      .catch((error: unknown) => console.warn('vclerk: curation sync failed', error));
  }

  private showCards(cards: Card[]): void {
    this.cards.render(cards);
    this.search?.setShown(cards.flatMap((c) => (c.productId ? [c.productId] : [])));
  }

  private async move(itemId: string, by: -1 | 1): Promise<void> {
    const ids = this.cards.current.map((c) => c.id);
    const from = ids.indexOf(itemId);
    const to = from + by;
    if (from < 0 || to < 0 || to >= ids.length) return;
    [ids[from], ids[to]] = [ids[to]!, ids[from]!];
    await this.request(() => this.signalling.request('curation.reorder', { itemIds: ids })).catch(() => undefined);
  }

  /** Runs a request; a refusal shows a short message in the panel (and rejects). */
  private async request<T>(send: () => Promise<T>): Promise<T> {
    try {
      const result = await send();
      this.problem.hidden = true;
      return result;
    } catch (error) {
      this.problem.textContent = this.t(errorCode(error) === 'limit_reached' ? 'request_limit_reached' : 'request_failed');
      this.problem.hidden = false;
      throw error;
    }
  }
}
