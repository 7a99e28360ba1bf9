/**
 * Every error the HTTP API returns, in one place: a stable code, the HTTP status, a default message and what to do.
 * Body: {"error": {"code", "message", "hint", ...details}}. Codes never change meaning once released.
 */
export const API_ERRORS = {
  CK_ERR_UNAUTHORIZED: {
    status: 401,
    message: 'missing or wrong bearer token',
    hint: 'send "Authorization: Bearer <token>" with the token from server.token, server.tokenFile or CERTKEEPER_TOKEN',
  },
  CK_ERR_BAD_REQUEST: {
    status: 400,
    message: 'the request body is not valid',
    hint: 'send JSON like {"names": ["example.com"], "force": false, "dryRun": false}; every field is optional',
  },
  CK_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'the body must be JSON',
    hint: 'send the header "content-type: application/json" (curl -d sends form data unless told)',
  },
  CK_ERR_BODY_TOO_LARGE: {
    status: 413,
    message: 'the request body is too large',
    hint: 'list fewer names per request, or raise server.bodyLimitBytes',
  },
  CK_ERR_FORBIDDEN: {
    status: 403,
    message: 'not served to this address',
    hint: 'open the status page from the daemon host (loopback), set server.publicStatus: true, or set an API token (server.tokenFile or CERTKEEPER_TOKEN) and give it when the browser asks',
  },
  CK_ERR_READ_ONLY: {
    status: 404,
    message: 'this is the read-only listener (server.metricsListen)',
    hint: 'it serves GET /, /metrics, /healthz and /readyz only; send API requests to server.listen',
  },
  CK_ERR_UNKNOWN_CERTIFICATE: {
    status: 404,
    message: 'unknown certificate name',
    hint: 'use names from GET /v1/certificates (the "name" keys of the configuration)',
  },
  CK_ERR_JOB_NOT_FOUND: {
    status: 404,
    message: 'no such job',
    hint: 'use the jobId returned by POST /v1/renew; the daemon keeps the last 200 jobs in memory only',
  },
  CK_ERR_ACM_AUDIT_OFF: {
    status: 404,
    message: 'the ACM audit is not configured',
    hint: 'add "acmAudit: { regions: [us-east-1] }" to the configuration and restart the daemon',
  },
  CK_ERR_NOT_FOUND: {
    status: 404,
    message: 'no such endpoint',
    hint: 'see the README for the endpoints: / (status page), /v1/renew, /v1/reload, /v1/jobs/:id, /v1/certificates, /v1/acm/findings, /healthz, /readyz, /metrics',
  },
  CK_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    message: 'method not allowed here',
    hint: 'see the README for which method each endpoint takes',
  },
  CK_ERR_CONFIG_INVALID: {
    status: 422,
    message: 'the configuration file does not validate; the daemon keeps running the previous configuration',
    hint: 'fix the problems listed (certkeeper check-config shows them too), then reload again',
  },
  CK_ERR_RELOAD_UNAVAILABLE: {
    status: 409,
    message: 'this daemon was not started from a configuration file',
    hint: 'start it with certkeeper run --config FILE (or CERTKEEPER_CONFIG) to reload that file',
  },
  CK_ERR_FORCE_COOLDOWN: {
    status: 429,
    message: 'this certificate was force-renewed moments ago',
    hint: 'wait for Retry-After seconds, or renew without force (the schedule renews when due); the pause is server.forceCooldownSeconds',
  },
  CK_ERR_SHUTTING_DOWN: {
    status: 503,
    message: 'the daemon is shutting down and takes no new jobs',
    hint: 'retry once it has restarted',
  },
  CK_ERR_INTERNAL: {
    status: 500,
    message: 'internal error',
    hint: 'see the daemon log for this request; please report it',
  },
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly statusCode: number;
  readonly hint: string;
  readonly details: Record<string, unknown>;
  constructor(code: ApiErrorCode, message?: string, details: Record<string, unknown> = {}) {
    const def = API_ERRORS[code];
    super(message ?? def.message);
    this.name = 'ApiError';
    this.code = code;
    this.statusCode = def.status;
    this.hint = def.hint;
    this.details = details;
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, hint: this.hint, ...this.details } };
  }
}
