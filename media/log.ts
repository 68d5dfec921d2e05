/** The part of a pino logger the media layer uses (it does not depend on the app). */
export interface MediaLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  child(bindings: object): MediaLogger;
}
