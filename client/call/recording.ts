import type { RecordingState } from '../../app/calls/protocol';
import type { PageConfig, Translate } from './page';
import { errorCode, Signalling } from './signalling';
import { ModalQuestion } from './consent-dialog';

function byId<T extends HTMLElement>(id: string, type: { new (): T }): T | null {
  const el = document.getElementById(id);
  return el instanceof type ? el : null;
}

type Answer = 'granted' | 'declined' | 'withdrawn';

const REASONS = new Set(['declined', 'withdrawn', 'stopped', 'failed', 'disk_full']);

/**
 * Recording in the call page: the indicator everyone sees, the clerk's
 * start/stop button (policy "on demand"), and the customer's consent: the
 * prompt when the clerk asks, withdrawing during a recording, and under
 * "always" the answer given before joining (sent just before the media
 * join, which the server refuses without it).
 */
export class RecordingControls {
  private readonly indicator = byId('recording-indicator', HTMLElement);
  private readonly message = byId('recording-message', HTMLElement);
  private readonly toggle = byId('record-toggle', HTMLButtonElement);
  /** The customer's consent question: a modal dialog that takes focus and must be answered. */
  private readonly prompt: ModalQuestion | null;
  /** The clerk's "waiting for the customer's answer" while consent is asked. */
  private readonly pending = byId('recording-pending', HTMLElement);
  private readonly withdraw = byId('consent-withdraw', HTMLButtonElement);
  /** The customer's privacy note, prepared twice by the page: one shown at a time. */
  private readonly privacyRecording = byId('privacy-recording', HTMLElement);
  private readonly privacyUnrecorded = byId('privacy-unrecorded', HTMLElement);
  private state: RecordingState | null = null;
  /** The answer given before joining, sent before each join. */
  private prejoinAnswer: Answer | null = null;
  private signalling: Signalling | null = null;

  constructor(private readonly config: PageConfig, private readonly t: Translate) {
    const dialog = byId('recording-consent', HTMLDialogElement);
    this.prompt = dialog ? new ModalQuestion(dialog, { mustAnswer: true }) : null;
    this.toggle?.addEventListener('click', () => {
      const recording = this.state?.status === 'recording' || this.state?.status === 'requested';
      void this.send(recording ? 'recording.stop' : 'recording.start');
    });
    byId('consent-grant', HTMLButtonElement)?.addEventListener('click', () => void this.answer('granted'));
    byId('consent-decline', HTMLButtonElement)?.addEventListener('click', () => void this.answer('declined'));
    this.withdraw?.addEventListener('click', () => void this.answer('withdrawn'));
  }

  /** The session's signalling, once joining starts. */
  use(signalling: Signalling): void {
    this.signalling = signalling;
    signalling.on('recording.state', (state) => this.render(state));
  }

  /** Under "always", the customer's choice on the pre-join panel. */
  chooseBeforeJoin(answer: Answer): void {
    this.prejoinAnswer = answer;
  }

  /**
   * Under "always", a customer who declines where recording is required:
   * the answer goes into the ledger over a short connection of its own.
   */
  async declineWithoutJoining(): Promise<void> {
    const signalling = new Signalling(this.config.auth, this.config.node);
    await new Promise<void>((resolve) => {
      let moved = false;
      signalling.socket.once('connect', () => resolve());
      signalling.socket.on('connect_error', (error: Error & { data?: { node?: unknown } }) => {
        // Another node holds the call: once more, naming it.
        if (error.message === 'wrong_node' && typeof error.data?.node === 'string' && !moved) {
          moved = true;
          signalling.useNode(error.data.node);
          signalling.connect();
        } else resolve();
      });
      signalling.connect();
    });
    await signalling.request('recording.consent', this.consentPayload('declined')).catch(() => undefined);
    signalling.close();
  }

  /** Before each media join: the pre-join answer, if there is one. */
  async beforeJoin(): Promise<void> {
    if (this.config.role !== 'customer' || this.config.recording.mode !== 'always' || !this.prejoinAnswer || !this.signalling) return;
    const state = await this.signalling.request('recording.consent', this.consentPayload(this.prejoinAnswer));
    this.render(state);
  }

  /** After (re)joining: the current state. */
  sync(): void {
    if (this.config.recording.mode === 'off' || !this.signalling) return;
    this.signalling.request('recording.status', {}).then((state) => this.render(state), (error: unknown) => console.warn('vclerk: recording status failed', error));
  }

  private consentPayload(answer: Answer) {
    return { answer, noticeVersion: this.config.recording.noticeVersion, language: this.config.recording.noticeLanguage };
  }

  private async answer(answer: Answer): Promise<void> {
    if (!this.signalling) return;
    const failed = byId('recording-consent-error', HTMLElement);
    if (failed) failed.hidden = true;
    try {
      this.render(await this.signalling.request('recording.consent', this.consentPayload(answer)));
    } catch (error) {
      this.showMessage(errorCode(error));
      // The question stays open (the page behind it is inert): say there that the answer did not arrive.
      if (failed && this.prompt?.isOpen) failed.hidden = false;
    }
  }

  private async send(type: 'recording.start' | 'recording.stop'): Promise<void> {
    if (!this.signalling || !this.toggle) return;
    this.toggle.disabled = true;
    try {
      this.render(await this.signalling.request(type, {}));
    } catch (error) {
      this.showMessage(errorCode(error));
    } finally {
      this.toggle.disabled = false;
    }
  }

  private showMessage(code: string | null): void {
    if (!this.message) return;
    const key = code === 'disk_full' ? 'recording_disk_full' : code && REASONS.has(code) ? `recording_${code}` : code ? 'recording_unavailable' : '';
    this.message.textContent = key ? this.t(key) : '';
    this.message.hidden = !key;
  }

  private render(state: RecordingState): void {
    this.state = state;
    const recording = state.status === 'recording';
    if (this.indicator) this.indicator.hidden = !recording;
    document.getElementById('call')?.setAttribute('data-recording', state.status);
    if (this.toggle) {
      this.toggle.setAttribute('aria-pressed', String(recording));
      const words = this.t(recording ? 'record_stop' : state.status === 'requested' ? 'record_waiting' : 'record_start');
      (this.toggle.querySelector('.control-label') ?? this.toggle).textContent = words;
      this.toggle.title = words;
    }
    if (this.pending) this.pending.hidden = state.status !== 'requested';
    if (this.prompt) {
      if (this.config.role === 'customer' && state.status === 'requested') this.prompt.open(byId('consent-grant', HTMLButtonElement));
      else this.prompt.close();
    }
    if (this.withdraw) this.withdraw.hidden = !recording;
    if (this.privacyRecording && this.privacyUnrecorded) {
      this.privacyRecording.hidden = !recording;
      this.privacyUnrecorded.hidden = recording;
    }
    if (state.status === 'idle' && state.reason && REASONS.has(state.reason)) this.showMessage(state.reason);
    else if (state.status !== 'idle') this.showMessage(null);
  }
}
