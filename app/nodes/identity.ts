import os from 'node:os';
import net from 'node:net';
import type { Config } from '../../config';

/** Calls a node takes per media worker when VCLERK_NODE_CAPACITY is unset. */
export const CALLS_PER_WORKER = 100;

/** Who this node is among the nodes sharing the database: from the configuration, the machine and its media. */
export interface NodeIdentity {
  name: string;
  url: string;
  mediaAddress: string | null;
  capacity: number;
  heartbeatSeconds: number;
}

type NodeConfig = Pick<Config, 'nodeName' | 'nodeUrl' | 'nodeCapacity' | 'nodeHeartbeatSeconds' | 'host' | 'port' | 'tls'>;

/**
 * A host name as a node name (VCLERK_NODE_NAME's form): lower-cased, every
 * other character than a-z, 0-9 and - a dash, no dash at either end, at
 * most 63 characters; `node` when nothing is left.
 */
export function nameFromHost(hostname: string): string {
  const name = hostname.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63).replace(/^-+|-+$/g, '');
  return name || 'node';
}

/** http(s)://<VCLERK_HOST, or the host name when it listens on all addresses>:<VCLERK_PORT>. */
export function defaultNodeUrl(config: Pick<Config, 'host' | 'port' | 'tls'>, hostname: string): string {
  const everywhere = config.host === '0.0.0.0' || config.host === '::';
  const host = everywhere ? hostname : config.host;
  return `${config.tls === 'off' ? 'http' : 'https'}://${net.isIPv6(host) ? `[${host}]` : host}:${config.port}`;
}

/** This node's name: VCLERK_NODE_NAME, else from the host name. */
export function nodeNameOf(config: Pick<Config, 'nodeName'>, hostname = os.hostname()): string {
  return config.nodeName ?? nameFromHost(hostname);
}

export function nodeIdentity(config: NodeConfig, media: { mediaAddress: string | null; workers: number }, hostname = os.hostname()): NodeIdentity {
  return {
    name: nodeNameOf(config, hostname),
    url: config.nodeUrl ?? defaultNodeUrl(config, hostname),
    mediaAddress: media.mediaAddress,
    capacity: config.nodeCapacity ?? CALLS_PER_WORKER * Math.max(1, media.workers),
    heartbeatSeconds: config.nodeHeartbeatSeconds,
  };
}
