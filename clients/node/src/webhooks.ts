/**
 * Verifies a webhook pdp sent, the Standard Webhooks way: `webhook-signature`
 * holds `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` signatures (space
 * separated), keyed with the base64 secret after its `whsec_` prefix.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

import { WebhookVerificationError } from "./errors.js";

/** Header values as Node (`req.headers`), the Fetch API (`Headers`) or a
 * plain object give them; names are matched case-insensitively. */
export type WebhookHeaders =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

export interface VerifyWebhookOptions {
  /** How far the `webhook-timestamp` may be from now, in seconds (default
   * 300); `null` skips the time check (for replaying stored messages). */
  toleranceSeconds?: number | null;
  /** The time to check the timestamp against (default: now). */
  now?: Date;
}

const DEFAULT_TOLERANCE_SECONDS = 300;
const SECRET_PREFIX = "whsec_";
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (key.toLowerCase() !== name) continue;
    const first = Array.isArray(value) ? value[0] : value;
    return typeof first === "string" ? first : undefined;
  }
  return undefined;
}

function required(headers: WebhookHeaders, name: string): string {
  const value = header(headers, name);
  if (!value) throw new WebhookVerificationError(`missing the ${name} header`);
  return value;
}

function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!encoded || !BASE64.test(encoded)) {
    throw new WebhookVerificationError("the secret must be base64, optionally after a whsec_ prefix");
  }
  return Buffer.from(encoded, "base64");
}

/**
 * Checks that `body` (the raw request body, exactly as received) was signed
 * with `secret` and, unless `toleranceSeconds` is null, sent within the time
 * window; returns the parsed JSON event. Throws `WebhookVerificationError`
 * otherwise: treat the request as not from pdp.
 */
export function verifyWebhook(
  body: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
  options: VerifyWebhookOptions = {},
): unknown {
  const id = required(headers, "webhook-id");
  const timestamp = required(headers, "webhook-timestamp");
  const signatures = required(headers, "webhook-signature");
  if (!/^\d{1,15}$/.test(timestamp)) {
    throw new WebhookVerificationError(`webhook-timestamp is not a Unix time in seconds: ${JSON.stringify(timestamp)}`);
  }
  const tolerance = options.toleranceSeconds === undefined ? DEFAULT_TOLERANCE_SECONDS : options.toleranceSeconds;
  if (tolerance !== null && !(typeof tolerance === "number" && tolerance >= 0 && !Number.isNaN(tolerance))) {
    throw new RangeError(`toleranceSeconds must be a number of seconds, 0 or more, or null; got ${String(tolerance)}`);
  }
  if (tolerance !== null) {
    const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
    const skew = now - Number(timestamp);
    if (skew > tolerance) throw new WebhookVerificationError(`the message is too old (${skew} s)`);
    if (-skew > tolerance) throw new WebhookVerificationError(`the message is from the future (${-skew} s)`);
  }
  const payload = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body);
  const expected = createHmac("sha256", secretKey(secret))
    .update(`${id}.${timestamp}.`)
    .update(payload)
    .digest();
  const matches = signatures.split(" ").some((entry) => {
    const [version, signature] = entry.split(",", 2);
    if (version !== "v1" || !signature) return false;
    const given = Buffer.from(signature, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new WebhookVerificationError("no signature matches the body and the secret");
  try {
    return JSON.parse(payload.toString("utf8")) as unknown;
  } catch (error) {
    throw new WebhookVerificationError("the signed body is not JSON", { cause: error });
  }
}
