import type { Knex } from 'knex';
import { ANYONE, callRequests, clerkOf, CLERK, CUSTOMER, type CallContext, type CallModule } from '../calls/module';
import type { ResponseData } from '../calls/protocol';
import { CallRefusal } from '../calls/refusal';
import { callRef, CurationService, liveCard } from './service';

/**
 * The cards the clerk shows, as a call module: `curation.show`, `.note`,
 * `.reorder`, `.withdraw` are the clerk's, `.favourite` and `.ask` the
 * customer's, `.sync` both's. Each lets the service change the data, then
 * tells both participants the whole card list (a question also enters the chat).
 */
export function curationModule(knex: Knex): CallModule {
  const service = new CurationService(knex);
  const cardsChanged = async ({ who, emit }: CallContext<unknown>) => {
    const cards = (await service.cards(who.callId)).map(liveCard);
    emit('curation.cards', { cards });
  };
  return {
    name: 'curation',
    requests: callRequests({
      'curation.sync': {
        roles: ANYONE,
        handle: async ({ who }) => {
          const [cards, messages] = await Promise.all([service.cards(who.callId), service.messages(who.callId)]);
          const result: ResponseData['curation.sync'] = { cards: cards.map(liveCard), messages };
          if (who.participant.role === 'clerk') result.notes = await service.notes(who.callId);
          return result;
        },
      },
      'curation.show': {
        roles: CLERK,
        handle: async (ctx) => {
          const { who, payload } = ctx;
          const clerk = clerkOf(who);
          const card = await service.show(callRef(who), payload.productId, payload.note).catch(async (err: unknown) => {
            // A product of another organisation: audited there too (auth/scoped-service.ts).
            if (err instanceof CallRefusal && err.code === 'not_found') {
              const actor = { type: 'user' as const, id: clerk.userId, label: clerk.label, organisationId: who.organisationId };
              await service.auditForeignProduct({ organisationId: who.organisationId, actor, ip: who.ip, userAgent: who.userAgent }, payload.productId);
            }
            throw err;
          });
          await cardsChanged(ctx);
          return { card };
        },
      },
      'curation.note': {
        roles: CLERK,
        handle: async (ctx) => {
          await service.setNote(callRef(ctx.who), ctx.payload.itemId, ctx.payload.note);
          await cardsChanged(ctx);
          return {};
        },
      },
      'curation.reorder': {
        roles: CLERK,
        handle: async (ctx) => {
          await service.reorder(callRef(ctx.who), ctx.payload.itemIds);
          await cardsChanged(ctx);
          return {};
        },
      },
      'curation.withdraw': {
        roles: CLERK,
        handle: async (ctx) => {
          await service.withdraw(callRef(ctx.who), ctx.payload.itemId);
          await cardsChanged(ctx);
          return {};
        },
      },
      'curation.favourite': {
        roles: CUSTOMER,
        handle: async (ctx) => {
          await service.favourite(callRef(ctx.who), ctx.payload.itemId, ctx.payload.favourite);
          await cardsChanged(ctx);
          return {};
        },
      },
      'curation.ask': {
        roles: CUSTOMER,
        handle: async (ctx) => {
          const message = await service.ask(callRef(ctx.who), ctx.payload.itemId, ctx.payload.text);
          await cardsChanged(ctx);
          ctx.emit('chat.message', message);
          return { message };
        },
      },
    }),
  };
}
