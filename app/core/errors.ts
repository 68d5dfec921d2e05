/**
 * Typed errors. Each has an HTTP status and a stable machine-readable code;
 * the user-facing message is the i18n key `errors.<code>` unless a more
 * specific key is given. Anything else thrown is an internal error: the user
 * sees a generic page with a tracking id, the details go to the log only.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly messageKey: string;
  readonly params: Record<string, string | number>;
  /** Safe, structured details for API clients (e.g. which fields are invalid). */
  readonly details: unknown;

  constructor(
    status: number,
    code: string,
    options: { messageKey?: string; params?: Record<string, string | number>; details?: unknown; cause?: unknown } = {},
  ) {
    super(code, { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.messageKey = options.messageKey ?? `errors.${code}`;
    this.params = options.params ?? {};
    this.details = options.details;
  }
}

type Options = ConstructorParameters<typeof AppError>[2];

export class BadRequestError extends AppError {
  constructor(code = 'bad_request', options?: Options) {
    super(400, code, options);
  }
}

export interface FieldProblem {
  field: string;
  code: string;
}

export class ValidationError extends AppError {
  readonly fields: FieldProblem[];

  constructor(fields: FieldProblem[], options?: Options) {
    super(400, 'validation_failed', { ...options, details: { fields } });
    this.fields = fields;
  }
}

export class UnauthorizedError extends AppError {
  constructor(code = 'unauthenticated', options?: Options) {
    super(401, code, options);
  }
}

export class ForbiddenError extends AppError {
  constructor(code = 'forbidden', options?: Options) {
    super(403, code, options);
  }
}

export class NotFoundError extends AppError {
  constructor(code = 'not_found', options?: Options) {
    super(404, code, options);
  }
}

export class ConflictError extends AppError {
  constructor(code = 'conflict', options?: Options) {
    super(409, code, options);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(code = 'payload_too_large', options?: Options) {
    super(413, code, options);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(code = 'rate_limited', options?: Options) {
    super(429, code, options);
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(code = 'unavailable', options?: Options) {
    super(503, code, options);
  }
}

/**
 * Errors raised by Express's own body parsers carry `type` and `status`;
 * turn the known ones into typed errors so they answer with a stable code.
 */
export function fromFrameworkError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  const e = err as { type?: unknown; status?: unknown };
  // The router could not percent-decode a path parameter (overlong UTF-8 such as %c0%ae, a lone %): the client's fault.
  if (err instanceof URIError && e.status === 400) return new BadRequestError('invalid_input', { cause: err });
  if (typeof e?.type !== 'string') return undefined;
  switch (e.type) {
    case 'entity.parse.failed':
      return new BadRequestError('invalid_body', { cause: err });
    case 'entity.too.large':
      return new PayloadTooLargeError('payload_too_large', { cause: err });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError(415, 'unsupported_encoding', { cause: err });
    case 'parameters.too.many':
      return new PayloadTooLargeError('payload_too_large', { cause: err });
    default:
      return undefined;
  }
}
