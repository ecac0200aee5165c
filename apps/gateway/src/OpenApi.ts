// The OpenAPI 3.1 document of the HTTP API, generated from the same schemas the gateway
// decodes with (libs/protocol), served at /v1/openapi.json.
import {
  BatchRequest,
  DroppedResult,
  ErrorResponse,
  MessageRequest,
  PriorityCounts,
  QueuedResult,
} from "@holdover/protocol"
import { Schema } from "effect"

const schemaOf = (schema: Schema.Top) => {
  const document = Schema.toJsonSchemaDocument(schema)
  return {
    ...document.schema,
    ...(Object.keys(document.definitions).length ? { $defs: document.definitions } : {}),
  }
}

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorResponse" } } },
})

/** What every authenticated call can answer besides its own results. */
const authErrors = {
  "401": errorResponse("UNAUTHORIZED: no, or a bad or expired, token"),
  "403": errorResponse("FORBIDDEN: the token lacks the scope (or holdover_to)"),
  "503": errorResponse("QUEUE_UNAVAILABLE (with Retry-After)"),
}

let cached: unknown
export const openApiDocument = (): unknown => {
  cached ??= {
    openapi: "3.1.0",
    info: {
      title: "Holdover gateway",
      version: "1",
      description: "Producer and admin API (docs/protocol.md, version 1).",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: {
        MessageRequest: schemaOf(MessageRequest),
        BatchRequest: schemaOf(BatchRequest),
        QueuedResult: schemaOf(QueuedResult),
        DroppedResult: schemaOf(DroppedResult),
        ErrorResponse: schemaOf(ErrorResponse),
        PriorityCounts: schemaOf(PriorityCounts),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      "/v1/messages": {
        post: {
          summary: "Queue a message for a recipient (scope publish)",
          requestBody: {
            required: true,
            content: { "application/json": { schema: { $ref: "#/components/schemas/MessageRequest" } } },
          },
          responses: {
            "202": {
              description: "Stored in JetStream (queued), or dropped by the drop_newest policy",
              content: {
                "application/json": {
                  schema: {
                    oneOf: [
                      { $ref: "#/components/schemas/QueuedResult" },
                      { $ref: "#/components/schemas/DroppedResult" },
                    ],
                  },
                },
              },
            },
            "400": errorResponse("INVALID_MESSAGE: schema violation"),
            "413": errorResponse("MESSAGE_TOO_LARGE"),
            "429": errorResponse("QUEUE_FULL (policy reject), or RATE_LIMITED (with Retry-After)"),
            ...authErrors,
          },
        },
      },
      "/v1/messages/batch": {
        post: {
          summary: "Queue up to 1000 messages (scope publish); one result per message",
          requestBody: {
            required: true,
            content: { "application/json": { schema: { $ref: "#/components/schemas/BatchRequest" } } },
          },
          responses: {
            "200": { description: "One result or error per message, in order" },
            "400": errorResponse("INVALID_MESSAGE"),
            "413": errorResponse("MESSAGE_TOO_LARGE"),
            "429": errorResponse("RATE_LIMITED (with Retry-After)"),
            ...authErrors,
          },
        },
      },
      "/v1/recipients/{id}/queue": {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        get: {
          summary: "Queue depth per priority and whether the recipient is online (scope admin)",
          responses: {
            "200": { description: "depth" },
            "400": errorResponse("INVALID_MESSAGE: the id is not 1 to 256 bytes of UTF-8"),
            ...authErrors,
          },
        },
        delete: {
          summary: "Purge the recipient's queue (scope admin)",
          responses: {
            "200": { description: '{"purged":N}' },
            "400": errorResponse("INVALID_MESSAGE: the id is not 1 to 256 bytes of UTF-8"),
            ...authErrors,
          },
        },
      },
      "/v1/status": {
        get: {
          summary:
            "Gateway readiness, NATS connection and server version, the four streams with their state and policy (scope admin)",
          responses: {
            "200": { description: "status" },
            ...authErrors,
          },
        },
      },
      "/healthz": {
        get: { security: [], summary: "Process alive", responses: { "200": { description: "ok" } } },
      },
      "/readyz": {
        get: {
          security: [],
          summary: "JetStream reachable and not draining",
          responses: { "200": { description: "ready" }, "503": { description: "not ready" } },
        },
      },
      "/metrics": {
        get: {
          security: [],
          summary: "Prometheus metrics",
          responses: { "200": { description: "text format" } },
        },
      },
    },
  }
  return cached
}
