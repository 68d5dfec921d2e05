/**
 * Limits, intervals and patterns that the browser call client and the
 * server both use, in one place. No imports: the client bundle
 * (client/build.mjs) takes this file as it is, without zod or Node code.
 */

/** Limits of what participants type (characters): a card's note, a chat message, the clerk's private notes. */
export const NOTE_MAX = 1000;
export const MESSAGE_MAX = 2000;
export const PRIVATE_NOTES_MAX = 5000;
/** Cards per call, chat messages per call. */
export const MAX_CARDS = 100;
export const MAX_MESSAGES = 1000;

/** The same limits as the call pages' inputs show them (`maxlength`). */
export const TYPED_LIMITS = { message: MESSAGE_MAX, privateNotes: PRIVATE_NOTES_MAX } as const;

/** Size limit of one signalling request payload (JSON), in bytes. */
export const MAX_PAYLOAD_BYTES = 32 * 1024;
/** Client heartbeat interval; the server closes a peer silent for 3 intervals. */
export const HEARTBEAT_INTERVAL_MS = 5000;

/** A call's non-personal reference (case number): at most 64 characters, letters and digits first, then also ` ._/#:-`. */
export const CALL_REFERENCE_MAX = 64;
export const CALL_REFERENCE_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N} ._/#:-]*$/u;
