import { ANYONE, callRequests, CLERK, CUSTOMER, type CallModule } from '../calls/module';
import { CallRefusal } from '../calls/refusal';
import type { RecordingLive } from './live';

/**
 * Recording as a call module: `recording.status` for both, `.start` and
 * `.stop` the clerk's, `.consent` the customer's; the join gate under
 * "always", and the recording stops when the call's room closes. Without a
 * recorder (no job queue: tests), every request answers
 * `recording_unavailable`, whoever sends it.
 */
export function recordingModule(live: RecordingLive | undefined): CallModule {
  if (!live) {
    const unavailable = async (): Promise<never> => {
      throw new CallRefusal('recording_unavailable');
    };
    return {
      name: 'recording',
      requests: callRequests({
        'recording.status': { roles: ANYONE, handle: unavailable },
        'recording.start': { roles: ANYONE, handle: unavailable },
        'recording.stop': { roles: ANYONE, handle: unavailable },
        'recording.consent': { roles: ANYONE, handle: unavailable },
      }),
    };
  }
  return {
    name: 'recording',
    requests: callRequests({
      'recording.status': { roles: ANYONE, handle: ({ who }) => live.status(who) },
      'recording.start': { roles: CLERK, handle: ({ who }) => live.requestStart(who) },
      'recording.stop': { roles: CLERK, handle: ({ who }) => live.requestStop(who) },
      'recording.consent': { roles: CUSTOMER, handle: ({ who, room, payload }) => live.consent(who, room, payload) },
    }),
    start: (emitToCall) => live.attach(emitToCall),
    beforeJoin: (who) => live.beforeJoin(who),
    afterJoin: (who, room) => live.afterJoin(who, room),
    callEnded: (callId) => live.callEnded(callId),
    close: () => live.close(),
  };
}
