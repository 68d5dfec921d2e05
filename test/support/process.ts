import dgram from 'node:dgram';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const root = path.join(__dirname, '..', '..');
export const compiledServer = path.join(root, 'dist', 'app', 'server.js');
export const compiledCli = path.join(root, 'dist', 'app', 'cli.js');

/** The process tests run the compiled appliance, as production does. */
export function assertBuilt(): void {
  if (!fs.existsSync(compiledServer)) throw new Error('dist/ is missing: run `npm run build` (npm test does it)');
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function canBind(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive ports free for TCP and UDP, for media
 * workers (worker i listens on first + i). Taken from 20000-29999: below
 * the kernel's ephemeral ports and away from the recorder's and the
 * workers' own port ranges, so nothing else grabs them meanwhile.
 */
export async function freePortBlock(count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const first = 20000 + Math.floor(Math.random() * (10000 - count));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await canBind(first + i);
    if (free) return first;
  }
  throw new Error(`no ${count} consecutive free ports in 20000-29999`);
}

/** Media settings for a test process: one worker on loopback, on a free port. */
export async function mediaEnv(): Promise<Record<string, string>> {
  return { VCLERK_MEDIA_WORKERS: '1', VCLERK_MEDIA_LISTEN_IP: '127.0.0.1', VCLERK_MEDIA_PORT: String(await freePortBlock(1)) };
}

/** Only what a fresh shell would have, plus the given settings: no VCLERK_ or DATABASE_URL leaks in. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8' };
  return { ...env, ...extra };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Running {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first log line matching, or rejects when the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<Exit>;
  /**
   * SIGTERM, and SIGKILL when the process has not ended `graceMs` later;
   * resolves with how it ended (signal SIGKILL: it had to be killed; both
   * null: not even that ended it). A process that hangs on the way down
   * fails the test's assertion on the exit, with its output, instead of the
   * whole test timing out.
   */
  stop(graceMs?: number): Promise<Exit>;
  /**
   * How a process that ends by itself (a CLI command, a refused start)
   * ended; one still running after `timeoutMs` is killed and the wait fails
   * with its output.
   */
  finished(timeoutMs?: number): Promise<Exit>;
}

/** How long a stopped appliance may take: its drain (10 s) and every shutdown step bounded (app/lifecycle/shutdown.ts). */
export const STOP_GRACE_MS = 60_000;

/**
 * Ends `child` (SIGTERM, then SIGKILL after `graceMs`); resolves once it
 * exited, or 5 s after the SIGKILL at the latest. The one way tests stop
 * the processes they start.
 */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs = STOP_GRACE_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(graceMs)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** `node file args` with its output collected (stdout and stderr together). */
export function run(file: string, args: string[], env: NodeJS.ProcessEnv): Running {
  return watch(spawn(process.execPath, [file, ...args], { env, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** A spawned process (stdio piped) with its output collected, waited for and stopped. */
export function watch(child: ChildProcess): Running {
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    output: () => output,
    exited,
    async stop(graceMs = STOP_GRACE_MS) {
      await stopChild(child, exited, graceMs);
      return Promise.race([exited, sleep(0).then(() => ({ code: null, signal: null }))]);
    },
    async finished(timeoutMs = 60_000) {
      const exit = await Promise.race([exited, sleep(timeoutMs).then(() => undefined)]);
      if (exit) return exit;
      child.kill('SIGKILL');
      await Promise.race([exited, sleep(5000)]);
      throw new Error(`process did not end within ${timeoutMs} ms (killed); output:\n${output}`);
    },
    waitFor(pattern, timeoutMs = 60000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = output.split('\n').find((l) => pattern.test(l));
          if (line !== undefined) {
            cleanup();
            resolve(line);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then(({ code }) => {
          if (listeners.has(check)) {
            cleanup();
            reject(new Error(`process exited (${code}) before ${pattern}; output:\n${output}`));
          }
        });
        check();
      });
    },
  };
}
