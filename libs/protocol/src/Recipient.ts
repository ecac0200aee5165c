// Recipient ids: arbitrary UTF-8, 1 to 256 bytes. They never go into a NATS subject as they
// are (libs/queue encodes them), so dots, wildcards and spaces are all fine here.
import { Schema } from "effect"

export const maxRecipientBytes = 256

const utf8 = new TextEncoder()
export const recipientByteLength = (id: string): number => utf8.encode(id).byteLength

export const RecipientId = Schema.String.check(
  Schema.makeFilter((id: string) => id.length > 0 && recipientByteLength(id) <= maxRecipientBytes, {
    expected: `a recipient id of 1 to ${maxRecipientBytes} bytes of UTF-8`,
    // JSON Schema counts characters, not bytes: 1–256 characters is the looser approximation.
    toJsonSchema: () => [
      { minLength: 1, maxLength: maxRecipientBytes, description: `1 to ${maxRecipientBytes} bytes of UTF-8` },
      true,
    ],
  }),
)
export type RecipientId = typeof RecipientId.Type
