package dev.pdp.client;

import java.time.Instant;

/**
 * The state of an approval: pending, approved, denied or expired.
 * {@code reviewer} and {@code comment} are set once decided (else empty);
 * {@code expiresAt} is when a pending approval expires (and is then denied).
 */
public record ApprovalResult(
    String approvalId,
    String state,
    String reviewer,
    String comment,
    Instant expiresAt,
    Instant decidedAt) {}
