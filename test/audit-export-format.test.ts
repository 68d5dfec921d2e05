import assert from 'node:assert/strict';
import { exportColumns, ndjsonLine, type ExportRow } from '../app/compliance/audit-export-format';

/**
 * The NDJSON line is written field by field for speed; it must stay the
 * exact text of JSON.stringify over the columns in order, because exports
 * made before and after are compared and verified byte for byte.
 */
describe('audit export NDJSON lines', () => {
  const reference = (row: ExportRow) => {
    const ordered: Record<string, unknown> = {};
    for (const column of exportColumns) ordered[column] = row[column];
    return `${JSON.stringify(ordered)}\n`;
  };
  const base: ExportRow = {
    id: '42', chain: 'c0a8f1e2-1111-2222-3333-444455556666', seq: 7, occurred_at: '2026-12-05T14:52:36.123Z', organisation_id: 'c0a8f1e2-1111-2222-3333-444455556666',
    actor_type: 'user', actor_id: null, actor_label: 'Anna "A" Müller\n\u2028', action: 'call.started', target_type: null, target_id: 'x', ip: '::1',
    user_agent: 'Mozilla/5.0 <script>\\', details: { nested: { list: [1, 'two', null, true] }, emoji: '😀', lone: '\ud800' }, prev_hash: '0'.repeat(64), hash: 'f'.repeat(64),
  };

  it('equals JSON.stringify of the columns in order, for nulls, quotes, control characters, non-ASCII and nested details', () => {
    for (const row of [base, { ...base, details: {}, ip: null, user_agent: null, actor_label: null, organisation_id: null }]) {
      assert.equal(ndjsonLine(row), reference(row));
    }
  });

  it('names every export column, in order, and no other', () => {
    assert.deepEqual(Object.keys(JSON.parse(ndjsonLine(base))), [...exportColumns]);
  });
});
