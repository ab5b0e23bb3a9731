package dev.pdp.client;

import java.time.Duration;

/**
 * One policy that fired. {@code severity} is low, medium, high or critical;
 * {@code enforcementMode} monitor, warn, require_approval or block.
 * {@code message} never contains the PII values found. {@code retryAfter}
 * is set by rate_limit policies, zero otherwise.
 */
public record Violation(
    String policyId,
    String policyName,
    String policyType,
    String severity,
    String message,
    String enforcementMode,
    Duration retryAfter) {}
