import type { Knex } from 'knex';
import type { Actor } from '../audit/actions';
import { listNodes, setNodeDraining } from './service';
import type { NodeView } from './state';

/** The server shell's own actor in the audit trail. */
const SHELL: Actor = { type: 'system', label: 'vclerk CLI' };

/** The node list as `vclerk node list` prints it: one aligned row per node. */
export function formatNodeList(nodes: NodeView[]): string {
  if (nodes.length === 0) return 'no node has registered yet';
  const header = ['NAME', 'STATE', 'CALLS', 'WORKERS', 'URL', 'MEDIA ADDRESS', 'VERSION', 'RENEWED (UTC)'];
  const rows = nodes.map((n) => [n.name, n.state, `${n.calls}/${n.capacity}`, String(n.workers), n.url, n.mediaAddress ?? '-', n.version, n.renewedAt.toISOString()]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/**
 * `vclerk node list | drain <name> | undrain <name>`: prints through `out`
 * and returns the exit code (2: usage). An unknown name throws
 * `UnknownNodeError` (the CLI prints it, exit 1).
 */
export async function runNodeCommand(knex: Knex, args: string[], out: (line: string) => void): Promise<number> {
  const [sub, name, ...rest] = args;
  if (sub === 'list' && name === undefined) {
    out(formatNodeList(await listNodes(knex)));
    return 0;
  }
  if ((sub === 'drain' || sub === 'undrain') && name && rest.length === 0) {
    const { node, changed } = await setNodeDraining(knex, name, sub === 'drain', SHELL);
    if (sub === 'drain') out(changed ? `node ${name} is draining: it keeps its calls and takes no new ones` : `node ${name} was already draining`);
    else out(changed ? `node ${name} takes new calls again` : `node ${name} was not draining`);
    if (node.state === 'gone' || node.state === 'stopped') out(`(node ${name} is ${node.state})`);
    return 0;
  }
  return 2;
}
