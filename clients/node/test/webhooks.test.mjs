// verifyWebhook beyond the case table's known-answer vector: header forms,
// the time window, bodies as bytes, bad secrets. Signatures are made here
// with node:crypto, the way a Standard Webhooks sender makes them.
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, it } from "node:test";

import { PdpError, verifyWebhook, WebhookVerificationError } from "@pdp/client";

const key = randomBytes(32);
const secret = `whsec_${key.toString("base64")}`;
const body = JSON.stringify({ type: "agent.paused", data: { agentId: "support-bot", reason: "incident" } });

function signed(payload = body, { id = "msg_1", at = Math.floor(Date.now() / 1000) } = {}) {
  const signature = createHmac("sha256", key).update(`${id}.${at}.${payload}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": String(at), "webhook-signature": `v1,${signature}` };
}

const rejects = (fn, pattern) =>
  assert.throws(fn, (error) => error instanceof WebhookVerificationError && error instanceof PdpError && pattern.test(error.message));

describe("verifyWebhook", () => {
  it("returns the parsed event of a fresh, signed message", () => {
    assert.deepEqual(verifyWebhook(body, signed(), secret), JSON.parse(body));
  });

  it("takes the body as bytes, and headers as Node, Fetch or any-case objects give them", () => {
    const headers = signed();
    assert.deepEqual(verifyWebhook(Buffer.from(body), new Headers(headers), secret), JSON.parse(body));
    const shouting = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), [v]]));
    assert.deepEqual(verifyWebhook(new TextEncoder().encode(body), shouting, secret), JSON.parse(body));
  });

  it("accepts a secret without its whsec_ prefix, and refuses one that is not base64", () => {
    assert.deepEqual(verifyWebhook(body, signed(), key.toString("base64")), JSON.parse(body));
    rejects(() => verifyWebhook(body, signed(), "whsec_not base64!"), /secret must be base64/);
    rejects(() => verifyWebhook(body, signed(), ""), /secret must be base64/);
  });

  it("refuses messages outside the time window, both ways, unless the window is off", () => {
    const now = Math.floor(Date.now() / 1000);
    rejects(() => verifyWebhook(body, signed(body, { at: now - 301 }), secret), /too old/);
    rejects(() => verifyWebhook(body, signed(body, { at: now + 301 }), secret), /from the future/);
    assert.ok(verifyWebhook(body, signed(body, { at: now - 290 }), secret));
    assert.ok(verifyWebhook(body, signed(body, { at: now - 3600 }), secret, { toleranceSeconds: 7200 }));
    assert.ok(verifyWebhook(body, signed(body, { at: 1 }), secret, { toleranceSeconds: null }));
    const then = new Date(1_000_000 * 1000);
    assert.ok(verifyWebhook(body, signed(body, { at: 1_000_000 }), secret, { now: then }));
    assert.throws(() => verifyWebhook(body, signed(), secret, { toleranceSeconds: -1 }), RangeError);
  });

  it("refuses a changed id, a malformed timestamp, missing headers and a body that is not JSON", () => {
    const headers = signed();
    rejects(() => verifyWebhook(body, { ...headers, "webhook-id": "msg_2" }, secret), /no signature matches/);
    rejects(() => verifyWebhook(body, { ...headers, "webhook-timestamp": "12e3" }, secret), /not a Unix time/);
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
      const { [name]: _dropped, ...rest } = headers;
      rejects(() => verifyWebhook(body, rest, secret), new RegExp(`missing the ${name} header`));
    }
    rejects(() => verifyWebhook(body, { ...headers, "webhook-signature": "v1," }, secret), /no signature matches/);
    rejects(() => verifyWebhook(body, { ...headers, "webhook-signature": "garbage" }, secret), /no signature matches/);
    rejects(() => verifyWebhook("not json", signed("not json"), secret), /not JSON/);
  });
});
