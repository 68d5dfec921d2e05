import type { Logger } from '../core/logger';
import { INTERNAL_ERROR } from './refusal';

/** A request's name as it may appear in a log line (socket.io allows numbers; strings may be long). */
export function loggableName(name: unknown): string {
  return typeof name === 'string' ? name.slice(0, 40) : `(${typeof name})`;
}

/**
 * Wraps a listener the signalling server hands to socket.io, a room, a
 * timer or any other event source, so that nothing it throws (synchronously
 * or as a rejected promise) escapes: socket.io calls packet listeners on a
 * later tick, where an exception ends the process. The failure is logged,
 * and when the last argument is a socket.io ack it is answered with
 * `internal_error` (socket.io ignores a second answer, so a listener that
 * already replied is not answered twice).
 */
export function guarded<A extends unknown[]>(log: Logger, what: string | ((...args: A) => string), listener: (...args: A) => unknown): (...args: A) => void {
  return (...args: A) => {
    const fail = (err: unknown) => {
      try {
        log.error({ err, handler: typeof what === 'string' ? what : what(...args) }, 'signalling handler failed');
        const ack = args[args.length - 1];
        if (typeof ack === 'function') ack(INTERNAL_ERROR);
      } catch {
        // Nothing more to do: the failure must not escape either.
      }
    };
    try {
      const result = listener(...args);
      if (result instanceof Promise) result.catch(fail);
    } catch (err) {
      fail(err);
    }
  };
}
