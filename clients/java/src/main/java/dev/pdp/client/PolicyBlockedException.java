package dev.pdp.client;

import java.util.List;
import java.util.stream.Collectors;

/**
 * A BLOCK decision: the call must not proceed. {@link #violations()} lists
 * every policy that fired, strictest first (monitor and warn ones included);
 * the message names the block-mode ones.
 */
public class PolicyBlockedException extends PdpException {
  private static final long serialVersionUID = 1L;

  private final transient List<Violation> violations;
  private final String decisionId;
  private final long snapshotRevision;

  public PolicyBlockedException(List<Violation> violations, String decisionId, long snapshotRevision) {
    super("blocked by policy: " + names(violations));
    this.violations = List.copyOf(violations);
    this.decisionId = decisionId;
    this.snapshotRevision = snapshotRevision;
  }

  private static String names(List<Violation> violations) {
    List<Violation> blocking =
        violations.stream().filter(v -> v.enforcementMode().equals("block")).toList();
    String names =
        (blocking.isEmpty() ? violations : blocking)
            .stream().map(Violation::policyName).collect(Collectors.joining(", "));
    return names.isEmpty() ? "unknown policy" : names;
  }

  public List<Violation> violations() {
    return violations;
  }

  public String decisionId() {
    return decisionId;
  }

  public long snapshotRevision() {
    return snapshotRevision;
  }
}
