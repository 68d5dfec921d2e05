import type { Knex } from 'knex';
import type { Actor } from '../audit/actions';
import { AuditService } from '../audit/service';
import { nodeView, type NodeView } from './state';
import { listNodeRows, nodeByNameForUpdate, updateDraining } from './store';

/** No node is registered under the name given. */
export class UnknownNodeError extends Error {
  readonly code = 'node_not_found';

  constructor(readonly nodeName: string) {
    super(`no node is registered under the name "${nodeName}"`);
  }
}

/** Every registered node, by name, with its state judged by the database's clock. */
export async function listNodes(knex: Knex): Promise<NodeView[]> {
  const { now, rows } = await listNodeRows(knex);
  return rows.map((row) => nodeView(row, now));
}

/**
 * Drains a node (it keeps serving the calls it has; placing calls skips
 * it) or takes it back. Audited appliance-wide (`node.drained`,
 * `node.undrained`) in the same transaction; a node already so is left
 * alone and not audited. Returns whether anything changed.
 */
export async function setNodeDraining(knex: Knex, name: string, draining: boolean, actor: Actor): Promise<{ node: NodeView; changed: boolean }> {
  const changed = await knex.transaction(async (trx) => {
    const row = await nodeByNameForUpdate(trx, name);
    if (!row) throw new UnknownNodeError(name);
    if (row.draining === draining) return false;
    await updateDraining(trx, row.id, draining);
    await new AuditService(knex).record({ organisationId: null, actor, action: draining ? 'node.drained' : 'node.undrained', target: { type: 'node', id: row.id }, details: { name } }, trx);
    return true;
  });
  const node = (await listNodes(knex)).find((n) => n.name === name)!;
  return { node, changed };
}
