import type { ChatMessage } from '../../app/calls/protocol';
import type { Role, Translate } from './page';

/**
 * The chat log and its input. Messages arrive once as the sender's answer
 * and once as the broadcast; they are kept by id, so each shows once.
 * Text goes in with textContent only.
 */
export class ChatPanel {
  private readonly seen = new Set<string>();

  constructor(
    private readonly log: HTMLOListElement,
    private readonly form: HTMLFormElement,
    private readonly input: HTMLInputElement,
    private readonly role: Role,
    private readonly t: Translate,
    send: (text: string) => Promise<void>,
  ) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (text === '') return;
      input.disabled = true;
      send(text)
        .then(() => (input.value = ''))
        .catch(() => undefined)
        .finally(() => {
          input.disabled = false;
          input.focus();
        });
    });
  }

  /** All messages so far (after joining or reconnecting): none of them counts as new. */
  reset(messages: ChatMessage[]): void {
    this.seen.clear();
    this.log.replaceChildren();
    for (const message of messages) this.add(message, false);
  }

  /** Adds a message once; one from the other side fires `vclerk:incoming` on the log (the unread badge, panels.ts). */
  add(message: ChatMessage, announce = true): void {
    if (this.seen.has(message.id)) return;
    this.seen.add(message.id);
    const item = document.createElement('li');
    item.className = `chat-message from-${message.from === this.role ? 'me' : 'them'}`;
    item.dataset.kind = message.kind;
    const who = document.createElement('span');
    who.className = 'chat-who';
    who.textContent = message.from === this.role ? this.t('chat_you') : this.t(message.from === 'clerk' ? 'chat_clerk' : 'chat_customer');
    const time = document.createElement('time');
    time.className = 'chat-time';
    time.dateTime = message.at;
    time.textContent = new Date(message.at).toLocaleTimeString(document.documentElement.lang === 'en' ? 'en-GB' : document.documentElement.lang || undefined, { hour: '2-digit', minute: '2-digit', timeZone: document.querySelector<HTMLMetaElement>('meta[name="vclerk-time-zone"]')?.content || undefined });
    const head = document.createElement('p');
    head.className = 'chat-head';
    head.append(who, ' ', time);
    item.append(head);
    if (message.kind === 'question') {
      const about = document.createElement('p');
      about.className = 'chat-question';
      about.textContent = this.t('chat_question', { name: message.itemName ?? '' });
      item.append(about);
    }
    if (message.body !== '') {
      const body = document.createElement('p');
      body.className = 'chat-body';
      body.textContent = message.body;
      item.append(body);
    }
    this.log.append(item);
    this.log.scrollTop = this.log.scrollHeight;
    if (announce && message.from !== this.role) this.log.dispatchEvent(new CustomEvent('vclerk:incoming'));
  }
}

const NOTES_DEBOUNCE_MS = 800;

/** The clerk's private notes: saved a moment after typing stops, and when the field is left. */
export class NotesPanel {
  private timer: number | undefined;
  private saved = '';

  constructor(
    private readonly field: HTMLTextAreaElement,
    private readonly status: HTMLElement,
    private readonly t: Translate,
    private readonly save: (text: string) => Promise<void>,
  ) {
    field.addEventListener('input', () => {
      window.clearTimeout(this.timer);
      this.timer = window.setTimeout(() => void this.flush(), NOTES_DEBOUNCE_MS);
    });
    field.addEventListener('blur', () => void this.flush());
  }

  /** The notes as stored (after joining); kept if the clerk has typed since. */
  reset(text: string): void {
    if (this.field.value === this.saved) this.field.value = text;
    this.saved = text;
  }

  private async flush(): Promise<void> {
    window.clearTimeout(this.timer);
    const text = this.field.value;
    if (text === this.saved) return;
    this.status.textContent = this.t('notes_saving');
    try {
      await this.save(text);
      this.saved = text;
      this.status.textContent = this.t('notes_saved');
    } catch {
      this.status.textContent = this.t('request_failed');
    }
  }
}
