/**
 * Values that may be used once within a time window (an OIDC `state`, a
 * logout token's `jti`): remembered in this process for `maxAgeMs`, oldest
 * forgotten first, at most `limit` at a time. A restart forgets them; the
 * tokens' own age bounds cover that.
 */
export class SeenOnce {
  private readonly seen = new Map<string, number>();

  constructor(private readonly maxAgeMs: number, private readonly limit = 100_000) {}

  /** True the first time `key` is offered within the window, false for a replay. */
  firstUse(key: string, now: number = Date.now()): boolean {
    for (const [old, at] of this.seen) {
      if (at > now - this.maxAgeMs) break;
      this.seen.delete(old);
    }
    if (this.seen.has(key)) return false;
    this.seen.set(key, now);
    if (this.seen.size > this.limit) this.seen.delete(this.seen.keys().next().value!);
    return true;
  }
}
