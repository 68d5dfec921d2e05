import type { Knex } from 'knex';
import { callRequests, CLERK, type CallModule } from '../calls/module';
import { CallRefusal } from '../calls/refusal';
import { callRef } from '../curation/module';
import { CurationService } from '../curation/service';

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
          // Only the clerk gets here (the declared roles); this narrows the type to the clerk's.
          if (who.participant.role !== 'clerk') throw new CallRefusal('forbidden');
          await service.saveNotes(callRef(who), who.participant.userId, payload.text);
          return {};
        },
      },
    }),
  };
}
