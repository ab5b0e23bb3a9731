package dev.pdp.client;

import java.time.Instant;
import java.util.List;

/**
 * The kill-switch state of an agent, its spend and the sidecar's snapshot.
 * {@code known} is false when the snapshot does not list the agent (policies
 * for all agents still apply to it). {@code snapshotRejection} lists the
 * errors of the last snapshot the sidecar refused while it kept serving the
 * active one; null when none was.
 */
public record AgentStatus(
    String agentId,
    String agentName,
    boolean known,
    boolean paused,
    String reason,
    Instant pausedSince,
    List<Budget> budgets,
    long snapshotRevision,
    String snapshotSource,
    List<FieldError> snapshotRejection) {

  /** Spend against one budget of one policy; period is "daily" (cost_limit) or "monthly" (budget_cap). */
  public record Budget(
      String policyId,
      String policyName,
      String period,
      double limitUsd,
      double spentUsd,
      Instant periodStart) {}

  /** A field of a rejected snapshot and what is wrong with it. */
  public record FieldError(String path, String message) {}
}
