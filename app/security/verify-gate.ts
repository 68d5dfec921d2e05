import os from 'node:os';

/**
 * Fair scheduling of password checks across clients.
 *
 * argon2 runs on libuv's thread pool, first come first served. A sign-in
 * flood from many addresses (each within its own per-address limit) queues
 * hundreds of verifications there, and a colleague's sign-in waits behind
 * all of them. The gate runs at most `concurrency` checks at once and takes
 * the next one round-robin over the clients waiting: a check waits for at
 * most one check per client ahead of it, however many each has queued.
 * Waiting is bounded by the sign-in throttle, which reserves every attempt
 * (per account and per client) before it reaches the gate.
 */
export class VerificationGate {
  private running = 0;
  /** The waiting checks per client, in round-robin order (a Map keeps insertion order). */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly concurrency: number) {}

  /** How many checks are waiting (for tests and metrics). */
  get queued(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  async run<T>(client: string, work: () => Promise<T>): Promise<T> {
    await this.acquire(client);
    try {
      return await work();
    } finally {
      this.running -= 1;
      this.next();
    }
  }

  private acquire(client: string): Promise<void> {
    if (this.running < this.concurrency && this.waiting.size === 0) {
      this.running += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(client);
      if (queue) queue.push(resolve);
      else this.waiting.set(client, [resolve]);
    });
  }

  private next(): void {
    while (this.running < this.concurrency) {
      const head = this.waiting.entries().next();
      if (head.done) return;
      const [client, queue] = head.value;
      const start = queue.shift()!;
      // The client goes to the back of the line with what it has left.
      this.waiting.delete(client);
      if (queue.length > 0) this.waiting.set(client, queue);
      this.running += 1;
      start();
    }
  }
}

/**
 * argon2 is CPU-bound: as many checks at once as there are cores but one
 * (the event loop keeps a core, so pages and calls still answer during a
 * flood), within libuv's thread pool.
 */
function defaultConcurrency(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(pool - 1, os.availableParallelism() - 1));
}

/** The process's gate for sign-in password checks. */
export const signInChecks = new VerificationGate(defaultConcurrency());
