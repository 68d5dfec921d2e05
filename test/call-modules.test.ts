import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { callModules } from '../app/call-modules';
import { requestTable } from '../app/calls/dispatch';
import { mediaModule } from '../app/calls/media-requests';
import { requests } from '../app/calls/protocol';
import { silentLogger } from './support/context';

const CALLS = path.join(__dirname, '..', 'app', 'calls');

function allModules() {
  const media = mediaModule({ calls: {} as never, logger: silentLogger, beforeJoin: async () => undefined, afterJoin: () => undefined, leave: async () => undefined });
  return [media, ...callModules({ knex: {} as never })];
}

describe('call modules: the signalling hub\'s one seam', () => {
  it('serve every request of the protocol exactly once, with the protocol\'s schema and declared roles', () => {
    const table = requestTable(allModules());
    assert.deepEqual([...table.keys()].sort(), Object.keys(requests).sort());
    for (const [name, { request }] of table) {
      assert.equal(request.schema, requests[name as keyof typeof requests], `${name}: the protocol's schema`);
      assert.ok(typeof request.roles === 'function' || request.roles.length > 0, `${name}: someone may send it`);
    }
  });

  it('two modules serving one request stop the hub from starting', () => {
    const [media] = allModules();
    assert.throws(() => requestTable([media!, { name: 'again', requests: media!.requests }]), /media and again both serve/);
  });

  it('the hub and its dispatch import no in-call feature', () => {
    for (const file of ['hub.ts', 'dispatch.ts', 'module.ts', 'refusal.ts', 'safe-handler.ts', 'media-requests.ts']) {
      const text = fs.readFileSync(path.join(CALLS, file), 'utf8');
      assert.doesNotMatch(text, /from '\.\.\/(curation|recordings|chat|notes)\//, file);
    }
  });
});
