import type { Translate } from './page';

/** Wide screens show the panels beside the stage (call.css uses the same width). */
const WIDE = '(min-width: 64rem)';

interface Panel {
  name: string;
  section: HTMLElement;
  toggle: HTMLButtonElement | null;
  badge: HTMLElement | null;
  unread: number;
}

/**
 * The side panels (catalog, cards, chat, notes) and their buttons in the
 * control bar. Wide screens: beside the stage, stacked, all open at first;
 * each button opens or closes its own. Narrower screens: a bottom sheet,
 * one panel at a time, closed at first. A chat message or new card arriving
 * while its panel is closed counts on the button's badge (with an
 * accessible label), cleared when the panel opens. chat.ts and cards.ts
 * announce arrivals with the `vclerk:incoming` and `vclerk:new-cards` events.
 */
export class Panels {
  private readonly panels = new Map<string, Panel>();
  private readonly container = document.getElementById('curation');
  private readonly wide = window.matchMedia(WIDE);
  /** Open panels, the last opened last (Escape closes it). */
  private opened: string[] = [];

  constructor(private readonly t: Translate) {
    for (const section of document.querySelectorAll<HTMLElement>('.call-panel[data-panel]')) {
      const name = section.dataset.panel!;
      const toggle = document.querySelector<HTMLButtonElement>(`.panel-toggle[data-panel="${name}"]`);
      this.panels.set(name, { name, section, toggle, badge: toggle?.querySelector<HTMLElement>('[data-unread]') ?? null, unread: 0 });
      toggle?.addEventListener('click', () => this.toggle(name));
    }
    for (const close of document.querySelectorAll<HTMLButtonElement>('[data-panel-close]')) {
      close.addEventListener('click', () => this.close(close.dataset.panelClose!, true));
    }
    for (const panel of this.panels.values()) this.set(panel, this.wide.matches);
    this.wide.addEventListener('change', () => {
      // Narrower now: a sheet shows one panel, the last opened.
      if (!this.wide.matches) for (const name of this.opened.slice(0, -1)) this.close(name, false);
    });
    document.getElementById('chat-log')?.addEventListener('vclerk:incoming', () => this.arrived('chat', 1));
    document.getElementById('cards')?.addEventListener('vclerk:new-cards', (event) => this.arrived('cards', (event as CustomEvent<number>).detail));
  }

  isOpen(name: string): boolean {
    return this.opened.includes(name);
  }

  toggle(name: string): void {
    if (this.isOpen(name)) this.close(name, true);
    else this.open(name, true);
  }

  open(name: string, focus: boolean): void {
    const panel = this.panels.get(name);
    if (!panel) return;
    if (!this.wide.matches) for (const other of [...this.opened]) if (other !== name) this.close(other, false);
    this.set(panel, true);
    // Beside the stage the panel's field takes focus; in a phone's sheet the panel itself (no keyboard popping up).
    if (focus) ((this.wide.matches ? panel.section.querySelector<HTMLElement>('input:not([type=hidden]), textarea') : null) ?? panel.section).focus();
  }

  close(name: string, returnFocus: boolean): void {
    const panel = this.panels.get(name);
    if (!panel || !this.isOpen(name)) return;
    const hadFocus = panel.section.contains(document.activeElement);
    this.set(panel, false);
    if (returnFocus && (hadFocus || document.activeElement === document.body)) panel.toggle?.focus();
  }

  /** Escape: closes the panel opened last; false when none is open. */
  closeLast(): boolean {
    const last = this.opened[this.opened.length - 1];
    if (!last) return false;
    this.close(last, true);
    return true;
  }

  private set(panel: Panel, open: boolean): void {
    panel.section.hidden = !open;
    panel.toggle?.setAttribute('aria-expanded', String(open));
    this.opened = this.opened.filter((n) => n !== panel.name);
    if (open) {
      this.opened.push(panel.name);
      this.setUnread(panel, 0);
    }
    if (this.container) this.container.hidden = this.opened.length === 0;
  }

  private arrived(name: string, count: number): void {
    const panel = this.panels.get(name);
    if (!panel || this.isOpen(name) || count <= 0) return;
    this.setUnread(panel, panel.unread + count);
  }

  private setUnread(panel: Panel, count: number): void {
    panel.unread = count;
    if (!panel.badge) return;
    panel.badge.hidden = count === 0;
    panel.badge.dataset.count = String(count);
    const number = document.createElement('span');
    number.setAttribute('aria-hidden', 'true');
    number.textContent = count > 99 ? '99+' : String(count);
    const label = document.createElement('span');
    label.className = 'visually-hidden';
    label.textContent = this.t('unread', { count });
    panel.badge.replaceChildren(number, label);
  }
}
