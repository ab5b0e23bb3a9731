package dev.pdp.client;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * A finished call, submitted for evaluation after the fact. {@code agentId}
 * and {@code requestId} (the idempotency key) are required; {@code costUsd}
 * must be finite and not negative; the other fields may be null.
 */
public record Trace(
    String agentId,
    String input,
    String output,
    double costUsd,
    String model,
    String tool,
    Map<String, String> metadata,
    String requestId,
    Instant startedAt,
    Duration duration,
    List<ContextItem> context) {

  public Trace {
    model = model == null ? "" : model;
    tool = tool == null ? "" : tool;
    metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
    context = context == null ? List.of() : List.copyOf(context);
  }

  /** A trace with only the required fields and the texts. */
  public static Trace of(String agentId, String requestId, String input, String output, double costUsd) {
    return new Trace(agentId, input, output, costUsd, "", "", Map.of(), requestId, null, null, List.of());
  }
}
