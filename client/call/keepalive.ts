/**
 * Keeps the clerk's staff session alive while the call page is open, so
 * that a long call does not outlive it (catalog search and *End call* need
 * it). The page's `#session-keepalive` element carries the address
 * (`data-keepalive-url`), the interval the server chose (`data-keepalive-ms`,
 * half the idle timeout) and the CSRF token (`data-csrf`). Renewing moves
 * only the idle expiry; the absolute session lifetime still ends the
 * session. When the server refuses (the session has already ended), the
 * renewing stops and the element, a hidden alert, is shown. Customers have
 * no session and their page no such element.
 */
export class SessionKeepalive {
  private timer: number | undefined;
  private stopped = false;

  private constructor(
    private readonly element: HTMLElement,
    private readonly url: string,
    private readonly intervalMs: number,
    private readonly csrf: string,
  ) {}

  /** The keep-alive the page asks for, or null when it asks for none. */
  static fromPage(doc: Document): SessionKeepalive | null {
    const element = doc.getElementById('session-keepalive');
    const url = element?.dataset.keepaliveUrl;
    const intervalMs = Number(element?.dataset.keepaliveMs);
    const csrf = element?.dataset.csrf ?? '';
    // Same-site paths only, and never more often than every second.
    if (!element || !url || !url.startsWith('/') || url.startsWith('//') || !Number.isFinite(intervalMs) || intervalMs < 1_000) return null;
    return new SessionKeepalive(element, url, intervalMs, csrf);
  }

  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = window.setInterval(() => void this.renew(), this.intervalMs);
  }

  /** For good: the call ended or the page is being left. */
  stop(): void {
    this.stopped = true;
    window.clearInterval(this.timer);
    this.timer = undefined;
  }

  private async renew(): Promise<void> {
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': this.csrf, Accept: 'application/json' },
      });
      if (response.status === 401 || response.status === 403) {
        // The session has already ended: tell the clerk, who must sign in again for *End call*.
        this.stop();
        this.element.hidden = false;
      }
    } catch (error) {
      // Offline for a moment: the next interval tries again, well before the idle timeout.
      console.warn('vclerk: renewing the session failed', error);
    }
  }
}
