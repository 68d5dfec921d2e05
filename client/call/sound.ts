import type { Translate } from './page';

/**
 * The other side's sound, when the browser will not play it by itself (a
 * page that joined without a click may not start audio): a button "turn
 * the sound on" appears beside the problems, and one click starts it.
 */
export class SoundUnlock {
  private button: HTMLButtonElement | null = null;

  constructor(private readonly audio: HTMLMediaElement, private readonly t: Translate, private readonly anchor: HTMLElement) {
    audio.addEventListener('playing', () => this.hide());
    audio.addEventListener('emptied', () => this.hide());
  }

  /** After the audio element got a track: tries to play it; offers the button if the browser refuses. */
  check(): void {
    if (!this.audio.srcObject || !this.audio.paused) return;
    this.audio.play().then(
      () => this.hide(),
      (error: unknown) => {
        if (error instanceof DOMException && error.name === 'NotAllowedError' && this.audio.srcObject) this.show();
      },
    );
  }

  private show(): void {
    if (!this.button) {
      const button = document.createElement('button');
      button.type = 'button';
      button.id = 'enable-sound';
      button.className = 'enable-sound';
      button.textContent = this.t('sound_enable');
      button.addEventListener('click', () => {
        this.audio.play().then(() => this.hide(), (error: unknown) => console.warn('vclerk: playing the sound failed', error));
      });
      this.anchor.insertAdjacentElement('afterend', button);
      this.button = button;
    }
    this.button.hidden = false;
  }

  private hide(): void {
    if (this.button) this.button.hidden = true;
  }
}
