import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * Which ffmpeg to run: the configured path (FFMPEG_PATH) if given; else
 * the binary of the optional npm package ffmpeg-static when it is
 * installed and its binary exists (its install script downloads it and
 * fails offline); else `ffmpeg` from the PATH (Debian's package).
 */
export function resolveFfmpeg(configured?: string): string {
  if (configured) return configured;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const bin: unknown = require('ffmpeg-static');
    if (typeof bin === 'string' && fs.existsSync(bin)) return bin;
  } catch {
    // not installed
  }
  return 'ffmpeg';
}

const SETPRIV = '/usr/bin/setpriv';
let setprivAvailable: boolean | undefined;

/**
 * ffmpeg must not outlive the appliance: one left behind by a crash (SIGKILL,
 * OOM) would hold the recorder's ports and keep writing into the tracks the
 * next start reconciles. Linux's parent-death signal (util-linux `setpriv`,
 * part of every Debian system) sends it SIGKILL when this process dies. Not
 * SIGINT: the media workers die with the appliance, so no packet comes any
 * more, and a single SIGINT does not interrupt ffmpeg's wait for one (it
 * stayed, seen in the appliance-kill test). A track cut off this way is read
 * up to its last written cluster (`probe.ts`). Without setpriv, ffmpeg runs
 * as is.
 */
export function withParentDeathSignal(command: string, args: string[]): [string, string[]] {
  setprivAvailable ??= fs.existsSync(SETPRIV);
  // A command that cannot run is started as is, so that its failure stays spawn's ENOENT.
  return setprivAvailable && executable(command) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]] : [command, args];
}

/** Whether `command` (a path, or a name looked up in PATH) names an executable file. */
function executable(command: string): boolean {
  const candidates = command.includes('/') ? [command] : (process.env.PATH ?? '').split(':').filter(Boolean).map((dir) => `${dir}/${command}`);
  return candidates.some((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started (e.g. ENOENT). */
  error?: Error;
}

/** How a stop ended: `q` honoured, the nudge (RTCP BYE) ended the input, or the signal it took; `exited` if it had ended already. */
export type StopMethod = 'q' | 'bye' | 'SIGINT' | 'SIGKILL' | 'exited';

/**
 * One running ffmpeg: its exit, the last lines of its log, and its
 * `-progress pipe:1` reports (when the arguments ask for them).
 */
export class FfmpegProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<FfmpegExit>;
  private exit: FfmpegExit | undefined;
  private readonly tail: string[] = [];
  private partialLine = '';
  private stopping: Promise<StopMethod> | undefined;

  constructor(ffmpegPath: string, args: string[], handlers: { onProgress?: (report: Record<string, string>) => void; onLine?: (line: string) => void } = {}) {
    const [command, argv] = withParentDeathSignal(ffmpegPath, args);
    this.child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => {
        // A spawn failure emits no 'exit'; a failure after the start (e.g. kill) does.
        if (this.child.pid === undefined) resolve((this.exit = { code: null, signal: null, error }));
      });
      // 'close' (not 'exit'): its output has been read to the end too.
      this.child.once('close', (code, signal) => resolve((this.exit = { code, signal })));
    });
    this.child.stdin!.on('error', () => undefined); // EPIPE when it already exited
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split(/\r?\n|\r/)) {
        if (!line.trim()) continue;
        this.tail.push(line.trim());
        if (this.tail.length > 20) this.tail.shift();
      }
    });
    let report: Record<string, string> = {};
    const onLine = (line: string) => {
      handlers.onLine?.(line);
      if (!handlers.onProgress) return;
      const eq = line.indexOf('=');
      if (eq < 0) return;
      const key = line.slice(0, eq).trim();
      report[key] = line.slice(eq + 1).trim();
      if (key === 'progress') {
        handlers.onProgress(report);
        report = {};
      }
    };
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (this.partialLine + chunk).split('\n');
      this.partialLine = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
    this.child.stdout!.on('end', () => {
      if (this.partialLine) onLine(this.partialLine);
      this.partialLine = '';
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** The last lines ffmpeg logged (for error reports). */
  logTail(lines = 5): string {
    return this.tail.slice(-lines).join(' | ');
  }

  /**
   * Ends it cleanly: `q` on stdin (exit 0, file finalised). ffmpeg reads
   * its keyboard only between packets, so when its input is silent (the
   * producers paused or gone) `nudge` runs after `nudgeMs` (the recorder
   * sends an RTCP BYE per stream: ffmpeg ends its input on them, also a
   * finalised file, exit 0). Still running after `graceMs`: SIGINT (exits
   * 255; it does not interrupt a blocked read). After `killMs` more: SIGKILL.
   */
  stop(options: { nudge?: () => Promise<void>; nudgeMs?: number; graceMs?: number; killMs?: number } = {}): Promise<StopMethod> {
    const { nudge, nudgeMs = 300, graceMs = 3000, killMs = 3000 } = options;
    this.stopping ??= (async () => {
      if (this.exit) return 'exited';
      this.child.stdin!.end('q');
      if (await this.exitsWithin(nudgeMs)) return 'q';
      if (nudge) {
        await nudge().catch(() => undefined);
        if (await this.exitsWithin(graceMs)) return 'bye';
      } else if (await this.exitsWithin(graceMs)) return 'q';
      this.child.kill('SIGINT');
      if (await this.exitsWithin(killMs)) return 'SIGINT';
      this.child.kill('SIGKILL');
      await this.exited;
      return 'SIGKILL';
    })();
    return this.stopping;
  }

  private async exitsWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const done = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return done;
  }
}
