package dev.pdp.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Base64;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

class WebhooksTest {
  // The Standard Webhooks known-answer vector.
  private static final String SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  private static final byte[] BODY = "{\"test\": 2432232314}".getBytes(StandardCharsets.UTF_8);
  private static final String SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

  private static Map<String, String> headers(String timestamp, String signature) {
    return Map.of("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", timestamp,
        "Webhook-Signature", signature);
  }

  @Test
  void knownAnswerVerifiesWithTheWindowOff() {
    var webhook = Webhooks.verify(BODY, headers("1614265330", SIGNATURE), SECRET, null, Clock.systemUTC());
    assertEquals("msg_p5jXN8AQM9LWM0D4loKWxJek", webhook.id());
    assertEquals(Instant.ofEpochSecond(1614265330), webhook.timestamp());
    assertArrayEquals(BODY, webhook.body());
    assertDoesNotThrow(() -> Webhooks.verify(
        BODY, headers("1614265330", "v1,Zm9yZ2Vk v2,x " + SIGNATURE), SECRET, null, Clock.systemUTC()));
  }

  @Test
  void refusals() {
    Clock clock = Clock.systemUTC();
    byte[] changed = "{\"test\": 2432232315}".getBytes(StandardCharsets.UTF_8);
    Map<String, Runnable> cases = Map.of(
        "no v1 signature matches", () -> Webhooks.verify(changed, headers("1614265330", SIGNATURE), SECRET, null, clock),
        "no v1 signature matches ", () -> Webhooks.verify(BODY, headers("1614265331", SIGNATURE), SECRET, null, clock),
        "missing", () -> Webhooks.verify(BODY, Map.of("webhook-id", "x"), SECRET, null, clock),
        "not a Unix time", () -> Webhooks.verify(BODY, headers("soon", SIGNATURE), SECRET, null, clock),
        "from now", () -> Webhooks.verify(BODY, headers("1614265330", SIGNATURE), SECRET),
        "not base64", () -> Webhooks.verify(BODY, headers("1614265330", SIGNATURE), "whsec_***", null, clock),
        "empty", () -> Webhooks.verify(BODY, headers("1614265330", SIGNATURE), "", null, clock));
    cases.forEach((reason, call) -> {
      var refused = assertThrows(WebhookVerificationException.class, call::run, reason);
      assertTrue(refused.getMessage().contains(reason.strip()), refused.getMessage());
    });
  }

  @Test
  void timeWindow() throws Exception {
    byte[] key = "a receiver's secret".getBytes(StandardCharsets.UTF_8);
    String secret = "whsec_" + Base64.getEncoder().encodeToString(key);
    byte[] body = "{\"type\":\"agent.paused\"}".getBytes(StandardCharsets.UTF_8);
    Instant now = Instant.ofEpochSecond(1_900_000_000L);
    Clock clock = Clock.fixed(now, ZoneOffset.UTC);
    for (long offset : new long[] {0, -240, 240, -360, 360}) {
      String stamp = Long.toString(now.getEpochSecond() + offset);
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      mac.update(("msg_1." + stamp + ".").getBytes(StandardCharsets.UTF_8));
      String signature = "v1," + Base64.getEncoder().encodeToString(mac.doFinal(body));
      Map<String, String> sent = Map.of("webhook-id", "msg_1", "webhook-timestamp", stamp, "webhook-signature", signature);
      if (Math.abs(offset) <= 300) {
        assertDoesNotThrow(() -> Webhooks.verify(body, sent, secret, Webhooks.DEFAULT_TOLERANCE, clock));
      } else {
        assertThrows(WebhookVerificationException.class,
            () -> Webhooks.verify(body, sent, secret, Webhooks.DEFAULT_TOLERANCE, clock));
      }
      if (offset == -240) {
        assertThrows(WebhookVerificationException.class,
            () -> Webhooks.verify(body, sent, secret, Duration.ofMinutes(1), clock));
      }
    }
  }
}
