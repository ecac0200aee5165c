import { recipientFromToken, subjectToken } from "@holdover/queue"
import fc from "fast-check"
import { describe, expect, it } from "vitest"

const recipientId = fc
  .string({ unit: "binary", minLength: 1, maxLength: 256 })
  .filter((id) => Buffer.byteLength(id) <= 256 && Buffer.from(id, "utf8").toString("utf8") === id)

describe("recipient encoding", () => {
  it("maps every id to a subject token of safe characters only, with no dots, wildcards or spaces", () => {
    fc.assert(
      fc.property(recipientId, (id) => {
        expect(subjectToken(id)).toMatch(/^[A-Za-z0-9_-]+$/)
      }),
      { numRuns: 2_000 },
    )
  })

  it("is injective: the token decodes back to the id, so two ids never share a queue", () => {
    fc.assert(
      fc.property(recipientId, recipientId, (a, b) => {
        expect(recipientFromToken(subjectToken(a))).toBe(a)
        if (a !== b) expect(subjectToken(a)).not.toBe(subjectToken(b))
      }),
      { numRuns: 2_000 },
    )
  })

  it("encodes the tricky ids of the contract to distinct safe tokens", () => {
    const ids = ["a.b", "a.*", ">", "a b", " ", "🙂", "a".repeat(256), "a", "a.", ".a"]
    const tokens = ids.map(subjectToken)
    expect(new Set(tokens).size).toBe(ids.length)
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(subjectToken("a".repeat(256)).length).toBeLessThanOrEqual(342)
  })
})
