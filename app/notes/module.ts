import type { Knex } from 'knex';
import { callRequests, clerkOf, CLERK, type CallModule } from '../calls/module';
import { callRef, CurationService } from '../curation/service';

/**
 * The clerk's private notes on a call as a call module: `notes.save`
 * (the whole text, `call_notes`), the clerk's only; never sent to the
 * customer. The notes come back with the clerk's `curation.sync`.
 */
export function notesModule(knex: Knex): CallModule {
  const service = new CurationService(knex);
  return {
    name: 'notes',
    requests: callRequests({
      'notes.save': {
        roles: CLERK,
        handle: async ({ who, payload }) => {
          await service.saveNotes(callRef(who), clerkOf(who).userId, payload.text);
          return {};
        },
      },
    }),
  };
}
