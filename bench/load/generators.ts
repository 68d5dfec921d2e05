/**
 * The parent's handle on the generator processes (generator.ts, forked):
 * calls are spread over them round-robin; requests and answers go over IPC.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Arrival, GeneratorRequest, GeneratorStats } from './generator';
import type { ParticipantReceivers, ParticipantSend } from './target';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

class GeneratorProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly child: ChildProcess;

  constructor() {
    // Under `tsx` the child inherits its loader; under mocha (tsx/cjs required in-process) it needs one.
    const execArgv = process.execArgv.some((a) => a.includes('tsx')) ? process.execArgv : [...process.execArgv, '--import', 'tsx'];
    this.child = fork(path.join(__dirname, 'generator.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    this.child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error) w.reject(new Error(`load generator: ${m.error}`));
      else w.resolve(m.result);
    });
    this.child.once('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`load generator exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  request<T>(req: WithoutId<GeneratorRequest>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...req, id });
    });
  }
}

export class Generators {
  private readonly processes: GeneratorProcess[];

  private constructor(count: number) {
    this.processes = Array.from({ length: count }, () => new GeneratorProcess());
  }

  static async start(count: number, clipFile: string, tickMs: number): Promise<Generators> {
    const g = new Generators(count);
    await Promise.all(g.processes.map((p) => p.request({ op: 'init', clipFile, tickMs })));
    return g;
  }

  private of(call: number): GeneratorProcess {
    return this.processes[call % this.processes.length]!;
  }

  receivers(call: number): Promise<[ParticipantReceivers, ParticipantReceivers]> {
    return this.of(call).request({ op: 'receivers', call });
  }

  send(call: number, sends: [ParticipantSend, ParticipantSend]): Promise<void> {
    return this.of(call).request({ op: 'send', call, sends });
  }

  /** The call's participants joined again elsewhere: its senders start over towards `sends` (the fault bench). */
  retarget(call: number, sends: [ParticipantSend, ParticipantSend]): Promise<void> {
    return this.of(call).request({ op: 'retarget', call, sends });
  }

  /** Per call, what its receive streams get now (the fault bench). */
  async arrivals(): Promise<Map<number, Arrival[]>> {
    const all = await Promise.all(this.processes.map((p) => p.request<Record<string, Arrival[]>>({ op: 'arrivals' })));
    return new Map(all.flatMap((r) => Object.entries(r).map(([call, a]) => [Number(call), a] as const)));
  }

  pids(): number[] {
    return this.processes.map((p) => p.child.pid!);
  }

  /** Each process's figures since the last call. */
  stats(): Promise<GeneratorStats[]> {
    return Promise.all(this.processes.map((p) => p.request<GeneratorStats>({ op: 'stats' })));
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.processes.map(async (p) => {
      const exited = new Promise((r) => p.child.once('exit', r));
      if (p.child.exitCode !== null) return;
      await p.request({ op: 'stop' }).catch(() => undefined);
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }));
  }
}
