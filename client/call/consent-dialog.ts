/**
 * Modal questions of the call page (<dialog> with showModal): the dialog
 * takes focus (its first button, or the one given), is announced through
 * its aria-labelledby/aria-describedby, and gives focus back to where it
 * was when it closes. A question that must be answered (the recording
 * consent) cannot be dismissed with Escape.
 */
export class ModalQuestion {
  private returnTo: HTMLElement | null = null;

  constructor(readonly dialog: HTMLDialogElement, private readonly options: { mustAnswer: boolean }) {
    dialog.addEventListener('cancel', (event) => {
      if (this.options.mustAnswer) event.preventDefault();
    });
    dialog.addEventListener('close', () => {
      const target = this.returnTo;
      this.returnTo = null;
      if (target && target.isConnected && !target.closest('[hidden]')) target.focus();
    });
  }

  get isOpen(): boolean {
    return this.dialog.open;
  }

  open(focus?: HTMLElement | null): void {
    if (this.dialog.open) return;
    const active = document.activeElement;
    this.returnTo = active instanceof HTMLElement && active !== document.body ? active : null;
    if (typeof this.dialog.showModal === 'function') this.dialog.showModal();
    else this.dialog.setAttribute('open', '');
    (focus ?? this.dialog.querySelector<HTMLElement>('button, [href], input, select, textarea'))?.focus();
  }

  close(): void {
    if (!this.dialog.open) return;
    if (typeof this.dialog.close === 'function') this.dialog.close();
    else this.dialog.removeAttribute('open');
  }
}
