package dev.pdp.client;

import com.google.protobuf.Timestamp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import pdp.v1.PolicyDecisionServiceOuterClass.Action;
import pdp.v1.PolicyDecisionServiceOuterClass.AuthorizeRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.AwaitApprovalRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.ContextKind;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceBatchRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.ReportUsageRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.SubmitTraceRequest;

/**
 * The client's arguments to protobuf requests, with the checks the client
 * can make before sending: a refused argument is an {@link
 * InvalidRequestException} naming the field as the sidecar would.
 */
final class Requests {
  private Requests() {}

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

  static AuthorizeRequest authorizeRequest(String sourceAgentId, String targetAgentId, String action) {
    requireId(sourceAgentId, "source_agent_id");
    requireId(targetAgentId, "target_agent_id");
    return AuthorizeRequest.newBuilder()
        .setSourceAgentId(sourceAgentId)
        .setTargetAgentId(targetAgentId)
        .setAction(action(action))
        .build();
  }

  static ReportUsageRequest usageRequest(String agentId, double costUsd, String requestId) {
    return ReportUsageRequest.newBuilder()
        .setAgentId(requireId(agentId, "agent_id"))
        .setCostUsd(amount(costUsd, "cost_usd"))
        .setRequestId(requireId(requestId, "request_id"))
        .build();
  }

  static AwaitApprovalRequest approvalRequest(String approvalId, Duration wait) {
    requireId(approvalId, "approval_id");
    if (wait == null || wait.isZero() || wait.isNegative()) {
      throw InvalidRequestException.local("timeout", "must be greater than 0, got " + wait);
    }
    return AwaitApprovalRequest.newBuilder().setApprovalId(approvalId).setTimeout(duration(wait)).build();
  }

  static EnforceBatchRequest batchRequest(List<EnforceRequest> requests) {
    var message = EnforceBatchRequest.newBuilder();
    for (int i = 0; i < requests.size(); i++) {
      message.addRequests(enforceRequest(requests.get(i), "requests[" + i + "]."));
    }
    return message.build();
  }
}
