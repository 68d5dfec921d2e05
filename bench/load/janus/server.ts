/**
 * Runs Janus as a child process for the load bench: a temp folder with the
 * configuration (config.ts), `janus -F <dir> -C <dir>/janus.jcfg` with its
 * output in <dir>/janus.log, readiness by polling the HTTP API's /info on
 * 127.0.0.1, and a stop that ends it (SIGTERM, then SIGKILL) and deletes
 * the folder. If this process exits without stopping it, Janus is killed
 * on the way out (and, through setpriv's parent-death signal, also when
 * this process is killed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JanusApi } from './api';
import { writeJanusConfig } from './config';
import { INSTALL_HINT, locateJanus } from './install';

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** add_remote_publisher and the streams array of rtp_forward came with Janus 1.1.0. */
const MIN_VERSION = 1100;

export interface JanusServer {
  pid: number;
  api: JanusApi;
  dir: string;
  version: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function logTail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

export async function startJanus(options: { eventLoops: number; debugLevel?: number }): Promise<JanusServer> {
  const install = locateJanus();
  const dir = mkdtempSync(join(tmpdir(), 'vclerk-janus-'));
  const httpPort = await freePort();
  const configFile = writeJanusConfig({ install, dir, httpPort, eventLoops: options.eventLoops, debugLevel: options.debugLevel });
  const logPath = join(dir, 'janus.log');
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    const args = ['-F', dir, '-C', configFile];
    // With util-linux's setpriv, Janus also gets SIGKILL when this process dies by a signal (no 'exit' handler runs then); setpriv execs, so the pid is Janus's.
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
    child = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', install.bin, ...args], { stdio: ['ignore', logFd, logFd], cwd: dir })
      : spawn(install.bin, args, { stdio: ['ignore', logFd, logFd], cwd: dir });
  } finally {
    closeSync(logFd);
  }
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (!process.env.JANUS_KEEP_DIR) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`janus target: could not start ${install.bin}: ${err.message}; ${INSTALL_HINT}`)));
  });
  spawnError.catch(() => undefined);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited(child);
      clearTimeout(timer);
    }
    process.removeListener('exit', killOnExit);
    if (!process.env.JANUS_KEEP_DIR) rmSync(dir, { recursive: true, force: true });
  };

  const api = new JanusApi(`http://127.0.0.1:${httpPort}/janus`);
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let info: Awaited<ReturnType<JanusApi['info']>> | undefined;
    while (!info) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`janus target: janus exited during start-up (${child.exitCode ?? child.signalCode}); its log:\n${logTail(logPath)}`);
      }
      if (Date.now() > deadline) throw new Error(`janus target: janus did not answer on 127.0.0.1:${httpPort} within ${START_TIMEOUT_MS / 1000} s; its log:\n${logTail(logPath)}`);
      info = await Promise.race([api.info().catch(() => undefined), spawnError]);
      if (!info) await new Promise((r) => setTimeout(r, 100));
    }
    if ((info.version ?? 0) < MIN_VERSION) throw new Error(`janus target: Janus ${info.version_string ?? info.version} is too old; remote publishers need 1.1.0 or later`);
    if (!info.plugins || !('janus.plugin.videoroom' in info.plugins)) throw new Error(`janus target: the videoroom plugin did not load; its log:\n${logTail(logPath)}`);
    await api.open();
    return { pid: child.pid!, api, dir, version: info.version_string ?? String(info.version), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
