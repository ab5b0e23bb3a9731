package dev.pdp.client;

import com.google.protobuf.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import pdp.v1.PolicyDecisionServiceOuterClass.AgentState;
import pdp.v1.PolicyDecisionServiceOuterClass.ApprovalState;
import pdp.v1.PolicyDecisionServiceOuterClass.AuthorizeDenial;
import pdp.v1.PolicyDecisionServiceOuterClass.AuthorizeResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.AwaitApprovalResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceBatchResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.SubmitTraceResponse;

/**
 * Protobuf answers to the client's records (requests go the other way in
 * {@link Requests}). Enum values map to lowercase
 * names with the prefix dropped (ENFORCEMENT_MODE_BLOCK is "block"), so a
 * value the contract adds later comes through as its name.
 */
final class Convert {
  private Convert() {}

  static String lowercase(Enum<?> value, String prefix) {
    String name = value.name();
    if (name.equals("UNRECOGNIZED") || name.endsWith("_UNSPECIFIED")) {
      return "unspecified";
    }
    return name.substring(prefix.length()).toLowerCase(Locale.ROOT);
  }

  static Instant instant(boolean present, Timestamp stamp) {
    return present ? Instant.ofEpochSecond(stamp.getSeconds(), stamp.getNanos()) : null;
  }

  static List<Violation> violations(List<pdp.v1.PolicyDecisionServiceOuterClass.Violation> messages) {
    List<Violation> out = new ArrayList<>(messages.size());
    for (var m : messages) {
      out.add(
          new Violation(
              m.getPolicyId(),
              m.getPolicyName(),
              m.getPolicyType(),
              lowercase(m.getSeverity(), "SEVERITY_"),
              m.getMessage(),
              lowercase(m.getEnforcementMode(), "ENFORCEMENT_MODE_"),
              Duration.ofMillis(m.getRetryAfterMs())));
    }
    return List.copyOf(out);
  }

  /**
   * The result of one Enforce answer; throws for BLOCK and AGENT_PAUSED. A
   * decision this client does not know is refused (fail closed) rather than
   * taken for an allow.
   */
  static EnforceResult enforceResult(EnforceResponse response, String agentId) {
    List<Violation> fired = violations(response.getViolationsList());
    Decision decision =
        switch (response.getDecision()) {
          case DECISION_BLOCK ->
              throw new PolicyBlockedException(
                  fired, response.getDecisionId(), response.getSnapshotRevision());
          case DECISION_AGENT_PAUSED ->
              throw new AgentPausedException(
                  agentId, response.getPausedReason(), response.getDecisionId());
          case DECISION_ALLOW -> Decision.ALLOW;
          case DECISION_ALLOW_WITH_WARNINGS -> Decision.ALLOW_WITH_WARNINGS;
          case DECISION_PENDING_APPROVAL -> Decision.PENDING_APPROVAL;
          default ->
              throw new PdpException(
                  "sidecar answered an unknown decision (" + response.getDecisionValue() + ")");
        };
    List<PiiFinding> findings = new ArrayList<>(response.getPiiFindingsCount());
    for (var f : response.getPiiFindingsList()) {
      findings.add(new PiiFinding(f.getField(), f.getPiiType(), f.getStart(), f.getEnd()));
    }
    return new EnforceResult(
        decision,
        fired,
        response.hasMaskedInput() ? response.getMaskedInput() : null,
        response.hasMaskedOutput() ? response.getMaskedOutput() : null,
        List.copyOf(findings),
        response.getDecisionId(),
        response.getApprovalId(),
        instant(response.hasApprovalExpiresAt(), response.getApprovalExpiresAt()),
        response.getSnapshotRevision(),
        response.getRequestId(),
        false);
  }

  static AuthorizeResult authorizeResult(AuthorizeResponse response) {
    AuthorizeDenial denial = response.getDenial();
    return new AuthorizeResult(
        response.getAllowed(),
        response.getReason(),
        response.getAllowed() ? null : lowercase(denial, "AUTHORIZE_DENIAL_"),
        instant(response.hasGrantExpiresAt(), response.getGrantExpiresAt()),
        response.getSnapshotRevision());
  }

  static AgentStatus agentStatus(AgentState state) {
    var snapshot = state.getSnapshot();
    List<AgentStatus.Budget> budgets = new ArrayList<>();
    for (var b : state.getBudgetsList()) {
      budgets.add(
          new AgentStatus.Budget(
              b.getPolicyId(),
              b.getPolicyName(),
              b.getPeriod(),
              b.getLimitUsd(),
              b.getSpentUsd(),
              instant(b.hasPeriodStart(), b.getPeriodStart())));
    }
    List<AgentStatus.FieldError> rejection = null;
    if (snapshot.hasLastRejection()) {
      rejection =
          snapshot.getLastRejection().getErrorsList().stream()
              .map(e -> new AgentStatus.FieldError(e.getPath(), e.getMessage()))
              .toList();
    }
    return new AgentStatus(
        state.getAgentId(),
        state.getAgentName(),
        state.getKnown(),
        state.getPaused(),
        state.getPausedReason(),
        instant(state.hasPausedSince(), state.getPausedSince()),
        List.copyOf(budgets),
        snapshot.getRevision(),
        snapshot.getSource(),
        rejection);
  }

  static ApprovalResult approvalResult(String approvalId, AwaitApprovalResponse response) {
    ApprovalState state = response.getState();
    return new ApprovalResult(
        approvalId,
        lowercase(state, "APPROVAL_STATE_"),
        response.getReviewer(),
        response.getComment(),
        instant(response.hasExpiresAt(), response.getExpiresAt()),
        instant(response.hasDecidedAt(), response.getDecidedAt()));
  }

  static TraceResult traceResult(SubmitTraceResponse response) {
    return new TraceResult(
        response.getTraceId(), violations(response.getViolationsList()), response.getAnomaly());
  }

  static List<BatchOutcome> batchOutcomes(List<EnforceRequest> requests, EnforceBatchResponse response) {
    if (response.getResponsesCount() != requests.size()) {
      throw new PdpException("sidecar answered " + response.getResponsesCount()
          + " decisions to a batch of " + requests.size());
    }
    List<BatchOutcome> outcomes = new ArrayList<>(requests.size());
    for (int i = 0; i < requests.size(); i++) {
      try {
        outcomes.add(new BatchOutcome(
            enforceResult(response.getResponses(i), requests.get(i).agentId()), null));
      } catch (PdpException decided) {
        outcomes.add(new BatchOutcome(null, decided));
      }
    }
    return List.copyOf(outcomes);
  }
}
