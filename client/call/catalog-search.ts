import { formatMoney } from './cards';
import type { Translate } from './page';

/** One product of GET /catalog/search. */
export interface FoundProduct {
  id: string;
  sku: string;
  name: string;
  price: string;
  currency: string;
  category: string | null;
  image?: string | null;
}

const DEBOUNCE_MS = 150;

/** "12.50" (the search answer's price) -> 1250 */
function cents(price: string): number {
  const [whole, fraction = ''] = price.split('.');
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0').slice(0, 2));
}

/**
 * The clerk's catalog search in the call: searches as they type (debounced,
 * the previous request aborted), with the category filter, and offers
 * "show to customer" on each result. Products already shown are marked.
 */
export class CatalogSearch {
  private controller: AbortController | null = null;
  private timer: number | undefined;
  private shown = new Set<string>();
  private results: FoundProduct[] = [];

  constructor(
    private readonly input: HTMLInputElement,
    private readonly category: HTMLSelectElement,
    private readonly status: HTMLElement,
    private readonly list: HTMLUListElement,
    private readonly t: Translate,
    private readonly show: (productId: string) => Promise<void>,
  ) {
    input.addEventListener('input', () => this.schedule());
    category.addEventListener('change', () => this.schedule(0));
    input.form?.addEventListener('submit', (event) => {
      event.preventDefault();
      this.schedule(0);
    });
  }

  /** Marks the products now shown to the customer. */
  setShown(productIds: Iterable<string>): void {
    this.shown = new Set(productIds);
    this.render();
  }

  /** The first search (empty query: the catalog by name). */
  start(): void {
    this.schedule(0);
  }

  private schedule(delay = DEBOUNCE_MS): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.search(), delay);
  }

  private async search(): Promise<void> {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const params = new URLSearchParams({ q: this.input.value.trim(), category: this.category.value });
    this.status.textContent = this.t('catalog_searching');
    try {
      const response = await fetch(`/catalog/search?${params}`, { signal: controller.signal, headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      if (!response.ok) throw new Error(`search answered ${response.status}`);
      const body = (await response.json()) as { products: FoundProduct[] };
      if (controller !== this.controller) return;
      this.results = body.products;
      this.status.textContent = this.results.length === 0 ? this.t('catalog_no_results') : '';
      this.render();
    } catch (error) {
      if (controller.signal.aborted) return;
      console.warn('vclerk: catalog search failed', error);
      this.status.textContent = this.t('catalog_failed');
    }
  }

  private render(): void {
    const items = this.results.map((product) => {
      const item = document.createElement('li');
      item.className = 'catalog-result';
      item.dataset.productId = product.id;
      if (product.image) {
        const image = document.createElement('img');
        image.className = 'catalog-result-image';
        image.src = product.image;
        image.alt = '';
        image.loading = 'lazy';
        item.append(image);
      }
      const text = document.createElement('div');
      text.className = 'catalog-result-text';
      const name = document.createElement('strong');
      name.textContent = product.name;
      const meta = document.createElement('small');
      meta.textContent = [product.sku, formatMoney(cents(product.price), product.currency), product.category].filter(Boolean).join(' · ');
      text.append(name, meta);
      const show = document.createElement('button');
      show.type = 'button';
      show.className = 'catalog-show';
      const isShown = this.shown.has(product.id);
      show.textContent = this.t(isShown ? 'catalog_shown' : 'catalog_show');
      show.disabled = isShown;
      show.addEventListener('click', () => {
        show.disabled = true;
        this.show(product.id).catch(() => (show.disabled = this.shown.has(product.id)));
      });
      item.append(text, show);
      return item;
    });
    this.list.replaceChildren(...items);
  }
}
