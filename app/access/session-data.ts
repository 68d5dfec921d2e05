import 'express-session';

declare module 'express-session' {
  interface SessionData {
    /** The signed-in staff user. */
    userId?: string;
    /** When the user signed in (ms since epoch): absolute timeout and invalidation. */
    authenticatedAt?: number;
    /** Synchroniser token for CSRF protection. */
    csrfToken?: string;
    /** One-shot messages shown on the next page (i18n keys). */
    flash?: { type: 'success' | 'error' | 'info'; key: string; params?: Record<string, string | number> }[];
  }
}
