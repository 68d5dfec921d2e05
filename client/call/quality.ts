/**
 * Connection quality from the transports' WebRTC statistics: packet loss
 * (received media, and what the server reports about ours) and the
 * round-trip time of the ICE candidate pair in use.
 */

export type Quality = 'good' | 'fair' | 'poor' | 'unknown';

export interface QualitySample {
  /** Share of packets lost over the last interval, 0..1. */
  loss: number;
  /** Round-trip time in milliseconds, or null when not known. */
  rttMs: number | null;
}

/** Anything with WebRTC stats: a mediasoup-client transport. */
export interface StatsSource {
  readonly closed: boolean;
  readonly connectionState: string;
  getStats(): Promise<RTCStatsReport>;
}

export const QUALITY_INTERVAL_MS = 2000;

/** good: < 2 % loss and < 250 ms; fair: < 8 % loss and < 600 ms; else poor. */
export function classify(sample: QualitySample): Quality {
  const rtt = sample.rttMs ?? 0;
  if (sample.loss < 0.02 && rtt < 250) return 'good';
  if (sample.loss < 0.08 && rtt < 600) return 'fair';
  return 'poor';
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

type Stat = Record<string, unknown>;

/**
 * Samples the transports every couple of seconds and reports a quality
 * when it changes. `unknown` while no transport is connected.
 */
export class QualityMonitor {
  private timer: number | undefined;
  private readonly counters = new Map<string, { lost: number; received: number }>();
  private readonly recentLoss: number[] = [];
  private current: Quality = 'unknown';
  private busy = false;

  constructor(private readonly sources: () => StatsSource[], private readonly onChange: (quality: Quality) => void) {}

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = window.setInterval(() => void this.tick(), QUALITY_INTERVAL_MS);
  }

  stop(): void {
    window.clearInterval(this.timer);
    this.timer = undefined;
    this.counters.clear();
    this.recentLoss.length = 0;
    this.report('unknown');
  }

  private report(quality: Quality): void {
    if (quality === this.current) return;
    this.current = quality;
    this.onChange(quality);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const connected = this.sources().filter((s) => !s.closed && s.connectionState === 'connected');
      if (connected.length === 0) {
        this.report('unknown');
        return;
      }
      const reports = await Promise.all(connected.map((s) => s.getStats().catch(() => undefined)));
      const sample = this.sample(reports.filter((r): r is RTCStatsReport => r !== undefined));
      if (!sample) return;
      this.recentLoss.push(sample.loss);
      if (this.recentLoss.length > 3) this.recentLoss.shift();
      // Averaged over the last few samples, so a single burst does not flip the indicator.
      const loss = this.recentLoss.reduce((a, b) => a + b, 0) / this.recentLoss.length;
      this.report(classify({ loss, rttMs: sample.rttMs }));
    } finally {
      this.busy = false;
    }
  }

  private sample(reports: RTCStatsReport[]): QualitySample | null {
    let lost = 0;
    let received = 0;
    let sendLoss = 0;
    let rtt: number | null = null;
    let seen = false;
    const seenIds = new Set<string>();
    for (const report of reports) {
      report.forEach((entry: Stat) => {
        const type = entry.type;
        if (type === 'inbound-rtp') {
          const id = String(entry.id);
          seenIds.add(id);
          const now = { lost: Math.max(0, num(entry.packetsLost) ?? 0), received: num(entry.packetsReceived) ?? 0 };
          const before = this.counters.get(id);
          this.counters.set(id, now);
          if (before) {
            lost += Math.max(0, now.lost - before.lost);
            received += Math.max(0, now.received - before.received);
          }
          seen = true;
        } else if (type === 'remote-inbound-rtp') {
          // What the server says about the media we send.
          const fraction = num(entry.fractionLost);
          if (fraction !== undefined) sendLoss = Math.max(sendLoss, fraction);
          const r = num(entry.roundTripTime);
          if (r !== undefined) rtt = Math.max(rtt ?? 0, r * 1000);
          seen = true;
        } else if (type === 'candidate-pair' && entry.nominated === true && entry.state === 'succeeded') {
          const r = num(entry.currentRoundTripTime);
          if (r !== undefined) rtt = Math.max(rtt ?? 0, r * 1000);
          seen = true;
        }
      });
    }
    for (const id of [...this.counters.keys()]) if (!seenIds.has(id)) this.counters.delete(id);
    if (!seen) return null;
    const receiveLoss = lost + received > 0 ? lost / (lost + received) : 0;
    return { loss: Math.max(receiveLoss, sendLoss), rttMs: rtt };
  }
}
