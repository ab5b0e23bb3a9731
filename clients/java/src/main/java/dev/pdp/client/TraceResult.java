package dev.pdp.client;

import java.util.List;

/**
 * The policies that fired on a trace (recorded as incidents); {@code anomaly}
 * is true when a block-mode policy fired or the cost is above the agent's
 * per-execution limit.
 */
public record TraceResult(String traceId, List<Violation> violations, boolean anomaly) {}
