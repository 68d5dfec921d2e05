import { appVersion } from '../core/paths';
import { apiScopes } from '../api-keys/service';
import { insightsPaths, insightsSchemas } from '../insights/openapi';

const error = {
  description: 'Refused, with a stable error code',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

const errors = {
  '400': error,
  '401': error,
  '403': error,
  '404': error,
  '429': error,
};

const json = (schema: object) => ({ content: { 'application/json': { schema } } });

/**
 * The REST API's OpenAPI 3.1 document. A test checks it against the route
 * table (every /api/v1 route is described, nothing else) and against real
 * answers (the Call schema lists exactly the fields the API returns).
 */
export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: {
      title: 'VClerk API',
      version: `1 (VClerk ${appVersion})`,
      description:
        'For the organisation\'s own systems. Authenticate every request with an API key: `Authorization: Bearer <key>` (or `X-API-Key`). Accepted requests are written to the organisation\'s API request log (key, method, path, status, client IP and user agent), kept as long as the organisation\'s retention setting for it says; refused requests (missing, unknown or revoked key, missing scope) are recorded in the audit trail (aggregated per source). Errors answer `{ "error": { "code", "message", "requestId", "details"? } }` with a stable `code`. Rate limit: 10 requests/s per key (bursts of 50), then 429 with Retry-After.',
    },
    servers: [{ url: '/' }],
    security: [{ apiKey: [] }],
    paths: {
      '/api/v1/whoami': {
        get: {
          summary: 'The organisation and key this request authenticates as',
          responses: {
            '200': {
              description: 'The key',
              ...json({
                type: 'object',
                properties: {
                  organisation: { type: 'object', properties: { slug: { type: 'string' } } },
                  key: { type: 'object', properties: { prefix: { type: 'string' }, scopes: { type: 'array', items: { type: 'string' } } } },
                },
              }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/call-links': {
        post: {
          summary: 'Create a call and its customer link for one of the organisation\'s clerks (scope calls:write)',
          requestBody: {
            required: true,
            ...json({
              type: 'object',
              additionalProperties: false,
              required: ['clerkId'],
              properties: {
                clerkId: { type: 'string', format: 'uuid', description: 'An active clerk of the organisation (GET /api/v1/clerks lists them; admins see the id under Admin → Users)' },
                reference: { type: 'string', maxLength: 64, description: 'A non-personal reference such as a case number (no e-mail address)' },
                validHours: { type: 'integer', minimum: 1, maximum: 720, description: 'How long the link is valid (from the scheduled time, if any)' },
                scheduledAt: { type: 'string', format: 'date-time' },
              },
            }),
          },
          responses: {
            '201': {
              description: 'The call, and the customer link: shown in this answer only (VClerk keeps only a hash)',
              ...json({ type: 'object', required: ['call', 'url'], properties: { call: { $ref: '#/components/schemas/Call' }, url: { type: 'string', format: 'uri' } } }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/calls': {
        get: {
          summary: 'The organisation\'s calls, newest first (scope calls:read)',
          parameters: [
            { name: 'status', in: 'query', schema: { type: 'string', enum: ['waiting', 'active', 'ended'] } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 50 } },
            { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'nextCursor of the previous page' },
          ],
          responses: {
            '200': {
              description: 'One page of calls',
              ...json({
                type: 'object',
                required: ['data', 'nextCursor'],
                properties: { data: { type: 'array', items: { $ref: '#/components/schemas/Call' } }, nextCursor: { type: ['string', 'null'] } },
              }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/calls/{id}': {
        get: {
          summary: 'One call (scope calls:read)',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          responses: { '200': { description: 'The call', ...json({ type: 'object', required: ['call'], properties: { call: { $ref: '#/components/schemas/Call' } } }) }, ...errors },
        },
      },
      '/api/v1/calls/{id}/revoke-link': {
        post: {
          summary: 'Revoke the call\'s customer link (scope calls:write)',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          responses: { '200': { description: 'The call, its link revoked', ...json({ type: 'object', required: ['call'], properties: { call: { $ref: '#/components/schemas/Call' } } }) }, ...errors },
        },
      },
      '/api/v1/queue': {
        get: {
          summary: 'The waiting queue now (scope calls:read)',
          responses: {
            '200': {
              description: 'Customers waiting and clerks available',
              ...json({ type: 'object', required: ['waiting', 'availableClerks'], properties: { waiting: { type: 'integer' }, availableClerks: { type: 'integer' } } }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/clerks': {
        get: {
          summary: 'The organisation\'s active clerks, by name: the ids `clerkId` takes (scope calls:read)',
          description: 'Only active users with the clerk role; invited and deactivated users, administrators and compliance staff are not listed. No e-mail addresses.',
          responses: {
            '200': {
              description: 'Every active clerk of the key\'s organisation',
              ...json({ type: 'object', required: ['data'], properties: { data: { type: 'array', items: { $ref: '#/components/schemas/Clerk' } } } }),
            },
            ...errors,
          },
        },
      },
      ...insightsPaths(errors),
      '/api/v1/openapi.json': {
        get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } } },
      },
    },
    components: {
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description: `An API key created by an administrator under Admin → API keys, with the scopes it may use (${apiScopes.join(', ')}); each operation names the scope it needs, and a key without it is refused with 403 \`api_scope_missing\``,
        },
      },
      schemas: {
        Call: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'status', 'clerkId', 'reference', 'scheduledAt', 'createdAt', 'startedAt', 'endedAt', 'endReason', 'link'],
          properties: {
            id: { type: 'string', format: 'uuid' },
            status: { type: 'string', enum: ['waiting', 'active', 'ended'] },
            clerkId: { type: ['string', 'null'], format: 'uuid' },
            reference: { type: ['string', 'null'] },
            scheduledAt: { type: ['string', 'null'], format: 'date-time' },
            createdAt: { type: 'string', format: 'date-time' },
            startedAt: { type: ['string', 'null'], format: 'date-time' },
            endedAt: { type: ['string', 'null'], format: 'date-time' },
            endReason: { type: ['string', 'null'] },
            link: {
              type: 'object',
              additionalProperties: false,
              required: ['expiresAt', 'revoked'],
              properties: { expiresAt: { type: ['string', 'null'], format: 'date-time' }, revoked: { type: 'boolean' } },
            },
          },
        },
        Clerk: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'name'],
          properties: {
            id: { type: 'string', format: 'uuid', description: 'Pass it as clerkId to POST /api/v1/call-links' },
            name: { type: 'string', description: 'The display name' },
          },
        },
        ...insightsSchemas(),
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'requestId'],
              properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' }, details: {} },
            },
          },
        },
      },
    },
  };
}
