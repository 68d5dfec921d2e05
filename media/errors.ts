/** A refused media operation, with a stable code the signalling layer passes on. */
export class MediaError extends Error {
  constructor(readonly code: 'not_found' | 'not_joined' | 'forbidden' | 'media_unavailable' | 'cannot_consume') {
    super(code);
    this.name = 'MediaError';
  }
}
