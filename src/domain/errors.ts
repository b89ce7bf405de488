/**
 * One registry of error codes. Every error Lapse reports carries one of these codes; the HTTP API
 * maps it to a status, the CLI to an exit code. Messages say what was wrong, where, and how to fix it.
 */

export const EXIT = {
  ok: 0,
  /** The thing checked is not right: invalid config, failing policy case, broken audit chain, denied. */
  failed: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  unavailable: 5,
  forbidden: 6,
  internal: 70,
} as const;

interface ErrorKind {
  readonly http: number;
  readonly exit: number;
  readonly title: string;
}

export const ERROR_CODES = {
  validation_failed: { http: 400, exit: EXIT.usage, title: 'Input is not valid' },
  config_invalid: { http: 400, exit: EXIT.failed, title: 'Configuration is not valid' },
  policy_denied: { http: 403, exit: EXIT.failed, title: 'Policy denies this request' },
  mfa_step_up_required: { http: 401, exit: EXIT.forbidden, title: 'Step-up authentication required' },
  mfa_failed: { http: 401, exit: EXIT.forbidden, title: 'Second factor not accepted' },
  self_approval: { http: 403, exit: EXIT.forbidden, title: 'Requesters cannot review their own request' },
  not_an_approver: { http: 403, exit: EXIT.forbidden, title: 'Not an approver for this stage' },
  unauthenticated: { http: 401, exit: EXIT.forbidden, title: 'Authentication required' },
  forbidden: { http: 403, exit: EXIT.forbidden, title: 'Not allowed' },
  rate_limited: { http: 429, exit: EXIT.unavailable, title: 'Too many attempts' },
  idp_unavailable: { http: 502, exit: EXIT.unavailable, title: 'Identity provider unavailable' },
  not_found: { http: 404, exit: EXIT.notFound, title: 'Not found' },
  gone: { http: 410, exit: EXIT.notFound, title: 'No longer available' },
  invalid_transition: { http: 409, exit: EXIT.conflict, title: 'Not possible in the current state' },
  conflict: { http: 409, exit: EXIT.conflict, title: 'Conflict' },
  connector_failed: { http: 502, exit: EXIT.unavailable, title: 'Target system call failed' },
  connector_timeout: { http: 504, exit: EXIT.unavailable, title: 'Target system did not answer in time' },
  /** A policy must verify the request's ticket and the ticket system could not be asked: retry later. */
  ticket_system_unavailable: { http: 503, exit: EXIT.unavailable, title: 'Ticket system unavailable' },
  channel_failed: { http: 502, exit: EXIT.unavailable, title: 'Notification channel failed' },
  storage_locked: { http: 503, exit: EXIT.unavailable, title: 'Data directory is in use' },
  storage_unavailable: { http: 503, exit: EXIT.unavailable, title: 'Database unavailable' },
  /** The CLI could not reach (or trust) the Lapse server: refused, timed out, untrusted TLS certificate. */
  server_unreachable: { http: 503, exit: EXIT.unavailable, title: 'Lapse server unreachable' },
  audit_chain_broken: { http: 500, exit: EXIT.failed, title: 'Audit chain verification failed' },
  internal: { http: 500, exit: EXIT.internal, title: 'Internal error' },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetails {
  /** Where the problem is: a file, a YAML path, a field, an id. */
  readonly where?: string;
  /** How to fix it. */
  readonly hint?: string;
  readonly [key: string]: unknown;
}

export class LapseError extends Error {
  override readonly name = 'LapseError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  /** "message (at where). hint" — the one-line form for logs and the CLI. */
  describe(): string {
    const where = this.details.where ? ` (at ${this.details.where})` : '';
    const hint = this.details.hint ? ` ${this.details.hint}` : '';
    return `${this.message}${where}.${hint}`.replace(/\.\./g, '.');
  }
}

export function isLapseError(error: unknown, code?: ErrorCode): error is LapseError {
  return error instanceof LapseError && (code === undefined || error.code === code);
}
