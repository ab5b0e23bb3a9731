package dev.pdp.client;

import com.google.protobuf.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import pdp.v1.PolicyDecisionServiceOuterClass.Action;
import pdp.v1.PolicyDecisionServiceOuterClass.AgentState;
import pdp.v1.PolicyDecisionServiceOuterClass.ApprovalState;
import pdp.v1.PolicyDecisionServiceOuterClass.AuthorizeDenial;
import pdp.v1.PolicyDecisionServiceOuterClass.AuthorizeResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.AwaitApprovalResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.ContextKind;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.SubmitTraceRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.SubmitTraceResponse;

/**
 * Requests to protobuf (with the checks the client can make before sending)
 * and protobuf answers to the client's records. Enum values map to lowercase
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

  static String requireId(String value, String field) {
    if (value == null || value.isBlank()) {
      throw InvalidRequestException.local(field, "required, must be a non-empty string");
    }
    return value;
  }

  /** Refuses what the sidecar would: NaN, infinities, negatives. */
  static double amount(double value, String field) {
    if (!Double.isFinite(value) || value < 0) {
      throw InvalidRequestException.local(field, "must be finite and not negative, got " + value);
    }
    return value;
  }

  static Action action(String action) {
    if (action != null && !action.isBlank()) {
      try {
        Action value = Action.valueOf("ACTION_" + action.toUpperCase(Locale.ROOT));
        if (value != Action.ACTION_UNSPECIFIED) {
          return value;
        }
      } catch (IllegalArgumentException unknown) {
        // refused below
      }
    }
    throw InvalidRequestException.local(
        "action",
        "must be one of execute, read, write, delete, invoke, query, subscribe, delegate; got '"
            + action + "'");
  }

  private static List<pdp.v1.PolicyDecisionServiceOuterClass.ContextItem> context(
      List<ContextItem> items, String field) {
    List<pdp.v1.PolicyDecisionServiceOuterClass.ContextItem> out = new ArrayList<>(items.size());
    for (int i = 0; i < items.size(); i++) {
      ContextItem item = items.get(i);
      ContextKind kind = ContextKind.CONTEXT_KIND_UNSPECIFIED;
      if (item.kind() != null && !item.kind().isEmpty()) {
        try {
          kind = ContextKind.valueOf("CONTEXT_KIND_" + item.kind().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException unknown) {
          throw InvalidRequestException.local(
              field + "[" + i + "].kind", "unknown context kind '" + item.kind() + "'");
        }
      }
      out.add(
          pdp.v1.PolicyDecisionServiceOuterClass.ContextItem.newBuilder()
              .setKind(kind)
              .setSource(nonNull(item.source()))
              .setContent(nonNull(item.content()))
              .build());
    }
    return out;
  }

  private static String nonNull(String text) {
    return text == null ? "" : text;
  }

  /**
   * The message for {@code r}; {@code prefix} names the request in a batch
   * ("requests[3].") so a refused field is named as the sidecar would.
   */
  static pdp.v1.PolicyDecisionServiceOuterClass.EnforceRequest enforceRequest(
      EnforceRequest r, String prefix) {
    requireId(r.agentId(), prefix + "agent_id");
    var message =
        pdp.v1.PolicyDecisionServiceOuterClass.EnforceRequest.newBuilder()
            .setAgentId(r.agentId())
            .setModel(r.model())
            .setTool(r.tool())
            .putAllMetadata(r.metadata())
            .setRequestId(r.requestId())
            .setApprovalId(r.approvalId())
            .addAllContext(context(r.context(), prefix + "context"));
    if (r.estimatedCostUsd() != null) {
      message.setEstimatedCostUsd(amount(r.estimatedCostUsd(), prefix + "estimated_cost_usd"));
    }
    if (r.input() != null) {
      message.setInput(r.input());
    }
    if (r.output() != null) {
      message.setOutput(r.output());
    }
    return message.build();
  }

  static SubmitTraceRequest traceRequest(Trace t) {
    requireId(t.agentId(), "agent_id");
    amount(t.costUsd(), "cost_usd");
    requireId(t.requestId(), "request_id");
    var message =
        SubmitTraceRequest.newBuilder()
            .setAgentId(t.agentId())
            .setCostUsd(t.costUsd())
            .setModel(t.model())
            .setTool(t.tool())
            .putAllMetadata(t.metadata())
            .setRequestId(t.requestId())
            .addAllContext(context(t.context(), "context"));
    if (t.input() != null) {
      message.setInput(t.input());
    }
    if (t.output() != null) {
      message.setOutput(t.output());
    }
    if (t.startedAt() != null) {
      message.setStartedAt(
          Timestamp.newBuilder()
              .setSeconds(t.startedAt().getEpochSecond())
              .setNanos(t.startedAt().getNano()));
    }
    if (t.duration() != null) {
      if (t.duration().isNegative()) {
        throw InvalidRequestException.local("duration", "must not be negative, got " + t.duration());
      }
      message.setDuration(duration(t.duration()));
    }
    return message.build();
  }

  static com.google.protobuf.Duration duration(Duration duration) {
    return com.google.protobuf.Duration.newBuilder()
        .setSeconds(duration.getSeconds())
        .setNanos(duration.getNano())
        .build();
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
}
