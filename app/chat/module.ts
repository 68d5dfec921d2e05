import type { Knex } from 'knex';
import { ANYONE, callRequests, type CallModule } from '../calls/module';
import { callRef, CurationService } from '../curation/service';

/**
 * The call's chat as a call module: `chat.send` from either side, stored
 * (`call_messages`, through CurationService), then sent to both as
 * `chat.message`. The history comes with `curation.sync`.
 */
export function chatModule(knex: Knex): CallModule {
  const service = new CurationService(knex);
  return {
    name: 'chat',
    requests: callRequests({
      'chat.send': {
        roles: ANYONE,
        handle: async ({ who, payload, emit }) => {
          const sender = who.participant.role === 'clerk' ? { role: 'clerk' as const, userId: who.participant.userId } : { role: 'customer' as const };
          const message = await service.send(callRef(who), sender, payload.text);
          emit('chat.message', message);
          return { message };
        },
      },
    }),
  };
}
