/**
 * Writes Janus's configuration for the load bench into a folder: the core
 * (janus.jcfg), the HTTP transport and the videoroom plugin. Janus is
 * started with `-F <folder> -C <folder>/janus.jcfg`, so nothing under
 * /etc/janus is read.
 *
 * What is on and off, and why (see bench/README.md, "Janus comparison"):
 * - only the videoroom plugin and the HTTP transport are loaded (the other
 *   plugins, transports, event handlers and loggers found in the Debian
 *   folders are listed under `disable`); event handlers off;
 * - the HTTP API listens on 127.0.0.1 only (port chosen by the bench, ACL
 *   127.), the admin API is off;
 * - no STUN/TURN, `interface` is 127.0.0.1 (no address detection), ICE
 *   restricted to 127.0.0.1 and IPv6 off (no PeerConnection is ever made:
 *   media enters through remote publishers and leaves through RTP
 *   forwarders, both plain RTP); no DTLS/SRTP (`no_webrtc_encryption`, and
 *   no `srtp_*` on the forwarders), like VClerk's plain transports;
 * - log level 3 (warnings and errors), as VClerk's workers log `warn`;
 * - no session timeout: the bench holds one control session for the run;
 * - `event_loops` = the bench's worker count. It bounds only the threads of
 *   WebRTC handles (none here); each remote publisher still has a thread.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JanusInstall } from './install';

export interface JanusConfigOptions {
  install: JanusInstall;
  /** The folder to write into (a fresh temp folder). */
  dir: string;
  httpPort: number;
  eventLoops: number;
  /** Janus's debug_level, 0–7 (default 3: warnings and errors). */
  debugLevel?: number;
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Every shared object in `folder` except `keep`, as a `disable` list. */
function allBut(folder: string, keep: string[]): string {
  let names: string[] = [];
  try {
    names = readdirSync(folder).filter((name) => name.endsWith('.so') && !keep.includes(name));
  } catch {
    // A missing folder (no event handlers or loggers installed) has nothing to disable.
  }
  return quote(names.sort().join(','));
}

export function coreConfig(o: JanusConfigOptions): string {
  const lib = o.install.libDir;
  return `# Written by bench/load/janus/config.ts for one load run; deleted afterwards.
general: {
	configs_folder = ${quote(o.dir)}
	plugins_folder = ${quote(join(lib, 'plugins'))}
	transports_folder = ${quote(join(lib, 'transports'))}
	events_folder = ${quote(join(lib, 'events'))}
	loggers_folder = ${quote(join(lib, 'loggers'))}
	log_to_stdout = true
	debug_level = ${o.debugLevel ?? 3}
	debug_timestamps = true
	debug_colors = false
	interface = "127.0.0.1"
	server_name = "vclerk-load-bench"
	session_timeout = 0
	hide_dependencies = true
	exit_on_dl_error = true
	no_webrtc_encryption = true
	event_loops = ${Math.max(1, Math.floor(o.eventLoops))}
}
media: {
	ipv6 = false
	rtp_port_range = "40000-40999"
	no_media_timer = 0
}
nat: {
	nice_debug = false
	ice_enforce_list = "127.0.0.1"
	ignore_mdns = true
}
plugins: {
	disable = ${allBut(join(lib, 'plugins'), ['libjanus_videoroom.so'])}
}
transports: {
	disable = ${allBut(join(lib, 'transports'), ['libjanus_http.so'])}
}
loggers: {
	disable = ${allBut(join(lib, 'loggers'), [])}
}
events: {
	broadcast = false
	disable = ${allBut(join(lib, 'events'), [])}
}
`;
}

export function httpTransportConfig(o: JanusConfigOptions): string {
  return `general: {
	events = false
	json = "compact"
	base_path = "/janus"
	http = true
	port = ${o.httpPort}
	ip = "127.0.0.1"
	https = false
	acl = "127."
}
admin: {
	admin_http = false
	admin_https = false
}
cors: {
}
certificates: {
}
`;
}

/** No rooms here: the bench creates one per call over the API. No admin_key, so rtp_forward needs none. */
export function videoroomConfig(): string {
  return `general: {
	events = false
	string_ids = false
}
`;
}

/** Writes the three files; returns the path of janus.jcfg. */
export function writeJanusConfig(o: JanusConfigOptions): string {
  const core = join(o.dir, 'janus.jcfg');
  writeFileSync(core, coreConfig(o));
  writeFileSync(join(o.dir, 'janus.transport.http.jcfg'), httpTransportConfig(o));
  writeFileSync(join(o.dir, 'janus.plugin.videoroom.jcfg'), videoroomConfig());
  return core;
}
