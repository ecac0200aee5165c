// How a recipient id becomes NATS names. Recipient ids are arbitrary UTF-8 (≤ 256 bytes), so
// they are never put into a subject as they are: the subject token is the base64url encoding
// of the id's UTF-8 bytes (alphabet A–Z a–z 0–9 - _), which is injective and contains no `.`,
// `*`, `>` or white space, so no id can address or wildcard another recipient's queue.

export const subjectToken = (recipient: string): string =>
  Buffer.from(recipient, "utf8").toString("base64url")

export const recipientFromToken = (token: string): string => Buffer.from(token, "base64url").toString("utf8")
