package dev.pdp.client;

import java.time.Instant;
import java.util.List;

/**
 * A decision that lets the call proceed, or holds it for approval.
 * {@code maskedInput} / {@code maskedOutput} are null unless a policy masked
 * the text. {@code approvalId} is empty unless the decision is
 * PENDING_APPROVAL. {@code failOpen} is true only when the sidecar could not
 * be reached and the client was built with {@code failOpen(true)}: then no
 * policy ran and the decision is ALLOW.
 */
public record EnforceResult(
    Decision decision,
    List<Violation> violations,
    String maskedInput,
    String maskedOutput,
    List<PiiFinding> piiFindings,
    String decisionId,
    String approvalId,
    Instant approvalExpiresAt,
    long snapshotRevision,
    String requestId,
    boolean failOpen) {

  static EnforceResult failedOpen() {
    return new EnforceResult(
        Decision.ALLOW, List.of(), null, null, List.of(), "", "", null, 0, "", true);
  }

  /** The violations of warn-mode policies: the call may go ahead, but someone should hear of it. */
  public List<Violation> warnings() {
    return violations.stream().filter(v -> v.enforcementMode().equals("warn")).toList();
  }
}
