/**
 * What one participant may hold in a room at a time. A browser needs a send
 * and a receive transport (a rejoin starts over: `join` closes what the
 * peer had), one producer per source, and one consumer per producer of the
 * other side. Anything beyond is refused with `limit_reached`.
 */
export const PEER_LIMITS = {
  /** Open WebRTC transports: send and receive, and as much again to spare. */
  transports: 4,
  /** Transports created per participant (role) and minute, across reconnects: a steady flood is refused with `rate_limited`. */
  transportsPerMinute: 30,
} as const;

/**
 * Counts events in a sliding window of `windowMs` and answers whether one
 * more fits under `max` (then counts it).
 */
export class WindowLimit {
  private readonly times: number[] = [];

  constructor(private readonly max: number, private readonly windowMs: number) {}

  take(now = Date.now()): boolean {
    while (this.times.length > 0 && this.times[0]! <= now - this.windowMs) this.times.shift();
    if (this.times.length >= this.max) return false;
    this.times.push(now);
    return true;
  }
}
