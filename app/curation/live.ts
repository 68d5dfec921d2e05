import type { RequestPayload, ResponseData, ServerEvents } from '../calls/protocol';
import type { SocketIdentity } from '../calls/signalling-auth';
import { CurationError, CurationService, liveCard, type CallRef } from './service';

export type CurationRequest = 'curation.sync' | 'curation.show' | 'curation.note' | 'curation.reorder' | 'curation.withdraw' | 'curation.favourite' | 'curation.ask' | 'chat.send' | 'notes.save';

/** How the live side reaches a call's participants (the signalling hub does the sending). */
export type Broadcast = <E extends keyof ServerEvents>(callId: string, event: E, data: ServerEvents[E]) => void;

type Handlers = { [T in CurationRequest]: (who: SocketIdentity, payload: RequestPayload<T>) => Promise<ResponseData[T]> };

function ref(who: SocketIdentity): CallRef {
  return { callId: who.callId, organisationId: who.organisationId };
}

function clerkOnly(who: SocketIdentity): string {
  if (who.participant.role !== 'clerk') throw new CurationError('forbidden');
  return who.participant.userId;
}

function customerOnly(who: SocketIdentity): void {
  if (who.participant.role !== 'customer') throw new CurationError('forbidden');
}

/**
 * The signalling requests of curation and chat: each checks the
 * participant's role, lets the service change the data, and tells both
 * participants what changed (the whole card list, or the new message).
 */
export function curationHandlers(service: CurationService, broadcast: Broadcast): Handlers {
  const cardsChanged = async (who: SocketIdentity) => {
    const cards = (await service.cards(who.callId)).map(liveCard);
    broadcast(who.callId, 'curation.cards', { cards });
  };
  return {
    'curation.sync': async (who) => {
      const [cards, messages] = await Promise.all([service.cards(who.callId), service.messages(who.callId)]);
      const result: ResponseData['curation.sync'] = { cards: cards.map(liveCard), messages };
      if (who.participant.role === 'clerk') result.notes = await service.notes(who.callId);
      return result;
    },
    'curation.show': async (who, payload) => {
      const userId = clerkOnly(who);
      const card = await service.show(ref(who), payload.productId, payload.note).catch(async (err: unknown) => {
        if (err instanceof CurationError && err.code === 'not_found') {
          const actor = { type: 'user' as const, id: userId, label: who.participant.label, organisationId: who.organisationId };
          await service.auditForeignProduct({ organisationId: who.organisationId, actor, ip: who.ip, userAgent: who.userAgent }, payload.productId);
        }
        throw err;
      });
      await cardsChanged(who);
      return { card };
    },
    'curation.note': async (who, payload) => {
      clerkOnly(who);
      await service.setNote(ref(who), payload.itemId, payload.note);
      await cardsChanged(who);
      return {};
    },
    'curation.reorder': async (who, payload) => {
      clerkOnly(who);
      await service.reorder(ref(who), payload.itemIds);
      await cardsChanged(who);
      return {};
    },
    'curation.withdraw': async (who, payload) => {
      clerkOnly(who);
      await service.withdraw(ref(who), payload.itemId);
      await cardsChanged(who);
      return {};
    },
    'curation.favourite': async (who, payload) => {
      customerOnly(who);
      await service.favourite(ref(who), payload.itemId, payload.favourite);
      await cardsChanged(who);
      return {};
    },
    'curation.ask': async (who, payload) => {
      customerOnly(who);
      const message = await service.ask(ref(who), payload.itemId, payload.text);
      await cardsChanged(who);
      broadcast(who.callId, 'chat.message', message);
      return { message };
    },
    'chat.send': async (who, payload) => {
      const sender = who.participant.role === 'clerk' ? { role: 'clerk' as const, userId: who.participant.userId } : { role: 'customer' as const };
      const message = await service.send(ref(who), sender, payload.text);
      broadcast(who.callId, 'chat.message', message);
      return { message };
    },
    'notes.save': async (who, payload) => {
      const userId = clerkOnly(who);
      await service.saveNotes(ref(who), userId, payload.text);
      return {};
    },
  };
}
