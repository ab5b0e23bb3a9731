package dev.pdp.client;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Verifies webhook deliveries signed the Standard Webhooks way: the
 * {@code webhook-id}, {@code webhook-timestamp} and {@code webhook-signature}
 * headers, and an HMAC-SHA256 of "id.timestamp.body" keyed with the secret
 * ("whsec_" followed by base64; any other secret is used as its UTF-8 bytes).
 */
public final class Webhooks {
  /** How far a delivery's timestamp may be from now before it is refused as a possible replay. */
  public static final Duration DEFAULT_TOLERANCE = Duration.ofMinutes(5);

  private Webhooks() {}

  /** A verified delivery: its id (stable across retries, to dedupe on), its timestamp and body. */
  public record Webhook(String id, Instant timestamp, byte[] body) {
    /** The body as text (it is JSON). */
    public String text() {
      return new String(body, StandardCharsets.UTF_8);
    }
  }

  /** {@link #verify(byte[], Map, String, Duration, Clock)} with the default tolerance. */
  public static Webhook verify(byte[] body, Map<String, String> headers, String secret) {
    return verify(body, headers, secret, DEFAULT_TOLERANCE, Clock.systemUTC());
  }

  /**
   * Verifies a delivery; pass the body exactly as received. Header names are
   * matched in any case. {@code tolerance} null turns the time window off.
   *
   * @throws WebhookVerificationException when it is not authentic or out of the window
   */
  public static Webhook verify(
      byte[] body, Map<String, String> headers, String secret, Duration tolerance, Clock clock) {
    Map<String, String> named = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    named.putAll(headers);
    String id = named.get("webhook-id");
    String stamp = named.get("webhook-timestamp");
    String signatures = named.get("webhook-signature");
    if (isEmpty(id) || isEmpty(stamp) || isEmpty(signatures)) {
      throw new WebhookVerificationException(
          "missing webhook-id, webhook-timestamp or webhook-signature header");
    }
    long seconds;
    try {
      seconds = Long.parseLong(stamp);
    } catch (NumberFormatException notANumber) {
      throw new WebhookVerificationException(
          "webhook-timestamp '" + stamp + "' is not a Unix time in seconds");
    }
    Instant sent = Instant.ofEpochSecond(seconds);
    if (tolerance != null) {
      Duration age = Duration.between(sent, clock.instant());
      if (age.abs().compareTo(tolerance) > 0) {
        throw new WebhookVerificationException(
            "webhook-timestamp is " + age.toSeconds() + " s from now, more than "
                + tolerance.toSeconds() + " s");
      }
    }
    byte[] expected = sign(key(secret), (id + "." + stamp + ".").getBytes(StandardCharsets.UTF_8), body);
    // Space-separated "v1,<base64>" signatures, several while a secret is
    // being rotated; any one that matches will do.
    for (String candidate : signatures.trim().split("\\s+")) {
      int comma = candidate.indexOf(',');
      if (comma < 0 || !candidate.substring(0, comma).equals("v1")) {
        continue;
      }
      try {
        byte[] signature = Base64.getDecoder().decode(candidate.substring(comma + 1));
        if (MessageDigest.isEqual(signature, expected)) {
          return new Webhook(id, sent, body.clone());
        }
      } catch (IllegalArgumentException notBase64) {
        // not this one
      }
    }
    throw new WebhookVerificationException("no v1 signature matches");
  }

  private static boolean isEmpty(String value) {
    return value == null || value.isEmpty();
  }

  private static byte[] key(String secret) {
    if (isEmpty(secret)) {
      throw new WebhookVerificationException("the secret is empty");
    }
    if (!secret.startsWith("whsec_")) {
      return secret.getBytes(StandardCharsets.UTF_8);
    }
    try {
      byte[] key = Base64.getDecoder().decode(secret.substring("whsec_".length()));
      if (key.length == 0) {
        throw new IllegalArgumentException("empty");
      }
      return key;
    } catch (IllegalArgumentException notBase64) {
      throw new WebhookVerificationException("the secret after whsec_ is not base64");
    }
  }

  private static byte[] sign(byte[] key, byte[] prefix, byte[] body) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      mac.update(prefix);
      return mac.doFinal(body);
    } catch (NoSuchAlgorithmException | InvalidKeyException impossible) {
      throw new IllegalStateException("HmacSHA256 is part of every Java runtime", impossible);
    }
  }
}
