/**
 * Notices when the other side's media stops arriving although it should:
 * a crashed tab or a lost network stops RTP long before any connection
 * times out. Samples the received packets of the consumers that are not
 * paused every half second; "stalled" when none of them received anything
 * for STALL_MS, and no longer once any does again.
 */

/** One consumer's receive counter, as RemoteMedia.activity() reports it. */
export interface ConsumerActivity {
  id: string;
  /** Not paused by the other side (a paused camera or microphone sends nothing, rightly). */
  active: boolean;
  packets: number;
}

export const STALL_MS = 2000;
export const STALL_SAMPLE_MS = 500;

export class MediaStallWatch {
  private timer: ReturnType<typeof setInterval> | undefined;
  private busy = false;
  private stalled = false;
  /** Per consumer: the last packet count and when it last grew (or became active). */
  private readonly seen = new Map<string, { packets: number; since: number; active: boolean }>();

  constructor(private readonly sample: () => Promise<ConsumerActivity[]>, private readonly onChange: (stalled: boolean) => void) {}

  get isStalled(): boolean {
    return this.stalled;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.check(), STALL_SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.seen.clear();
    this.report(false);
  }

  private report(stalled: boolean): void {
    if (stalled === this.stalled) return;
    this.stalled = stalled;
    this.onChange(stalled);
  }

  /** One sample (the timer takes one every STALL_SAMPLE_MS). */
  async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      const consumers = await this.sample();
      const ids = new Set(consumers.map((c) => c.id));
      for (const id of [...this.seen.keys()]) if (!ids.has(id)) this.seen.delete(id);
      let watched = 0;
      let silent = 0;
      for (const c of consumers) {
        const before = this.seen.get(c.id);
        // New, grown, or just resumed: counts as fresh from now on.
        const fresh = !before || c.packets > before.packets || (c.active && !before.active);
        const since = fresh ? now : before.since;
        this.seen.set(c.id, { packets: c.packets, since, active: c.active });
        if (!c.active) continue;
        watched++;
        if (now - since >= STALL_MS) silent++;
      }
      this.report(watched > 0 && silent === watched);
    } finally {
      this.busy = false;
    }
  }
}
