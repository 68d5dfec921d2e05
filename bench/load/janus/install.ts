/**
 * Where Janus is installed: the `janus` binary and the folders of its
 * plugins, transports, event handlers and loggers. Debian's package
 * (`apt-get install -y --no-install-recommends janus`, 1.1.x) puts them in
 * /usr/bin/janus and /usr/lib/<multiarch>/janus/. `JANUS_BIN` and
 * `JANUS_LIB_DIR` override both (e.g. for a build from source under /opt).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface JanusInstall {
  bin: string;
  /** Holds plugins/, transports/, events/, loggers/. */
  libDir: string;
}

export const INSTALL_HINT = 'install it with `apt-get install -y --no-install-recommends janus` (Debian/Ubuntu, version 1.1 or later), or point JANUS_BIN and JANUS_LIB_DIR at a build of your own';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findBin(): string | undefined {
  const fromEnv = process.env.JANUS_BIN;
  if (fromEnv) return executable(fromEnv) ? fromEnv : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'janus'))) return join(dir, 'janus');
  }
  return ['/usr/bin/janus', '/usr/local/bin/janus', '/opt/janus/bin/janus'].find(executable);
}

function multiarch(): string {
  if (process.arch === 'arm64') return 'aarch64-linux-gnu';
  if (process.arch === 'arm') return 'arm-linux-gnueabihf';
  return 'x86_64-linux-gnu';
}

function findLibDir(): string | undefined {
  const candidates = process.env.JANUS_LIB_DIR
    ? [process.env.JANUS_LIB_DIR]
    : [`/usr/lib/${multiarch()}/janus`, '/usr/lib/janus', '/usr/local/lib/janus', '/opt/janus/lib/janus'];
  return candidates.find((dir) => existsSync(join(dir, 'plugins', 'libjanus_videoroom.so')));
}

/** Throws with what to install when Janus, its videoroom plugin or its HTTP transport is missing. */
export function locateJanus(): JanusInstall {
  const bin = findBin();
  if (!bin) throw new Error(`janus target: the \`janus\` binary was not found${process.env.JANUS_BIN ? ` at JANUS_BIN=${process.env.JANUS_BIN}` : ' on PATH'}; ${INSTALL_HINT}`);
  const libDir = findLibDir();
  if (!libDir) throw new Error(`janus target: Janus's videoroom plugin (plugins/libjanus_videoroom.so) was not found${process.env.JANUS_LIB_DIR ? ` under JANUS_LIB_DIR=${process.env.JANUS_LIB_DIR}` : ` under /usr/lib/${multiarch()}/janus or /usr/lib/janus`}; ${INSTALL_HINT}`);
  if (!existsSync(join(libDir, 'transports', 'libjanus_http.so'))) throw new Error(`janus target: Janus's HTTP transport (${join(libDir, 'transports', 'libjanus_http.so')}) is missing; ${INSTALL_HINT}`);
  return { bin, libDir };
}
