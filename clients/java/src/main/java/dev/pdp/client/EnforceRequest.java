package dev.pdp.client;

import java.util.List;
import java.util.Map;

/**
 * One call to decide. {@code agentId} is required (an id or a name from the
 * snapshot). {@code input}, {@code output} and {@code estimatedCostUsd} may
 * be null (absent, which differs from empty); the cost must be finite and
 * not negative. Build one with {@link #builder(String)}:
 *
 * <pre>{@code
 * EnforceRequest.builder("my-chatbot").input(prompt).estimatedCostUsd(0.02).build()
 * }</pre>
 */
public record EnforceRequest(
    String agentId,
    String input,
    String output,
    Double estimatedCostUsd,
    String model,
    String tool,
    Map<String, String> metadata,
    String requestId,
    String approvalId,
    List<ContextItem> context) {

  public EnforceRequest {
    model = model == null ? "" : model;
    tool = tool == null ? "" : tool;
    metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
    requestId = requestId == null ? "" : requestId;
    approvalId = approvalId == null ? "" : approvalId;
    context = context == null ? List.of() : List.copyOf(context);
  }

  public static Builder builder(String agentId) {
    return new Builder(agentId);
  }

  /** Builds an {@link EnforceRequest}; every setter is optional. */
  public static final class Builder {
    private final String agentId;
    private String input;
    private String output;
    private Double estimatedCostUsd;
    private String model;
    private String tool;
    private Map<String, String> metadata;
    private String requestId;
    private String approvalId;
    private List<ContextItem> context;

    private Builder(String agentId) {
      this.agentId = agentId;
    }

    /** The text about to be sent to the model or tool (input side). */
    public Builder input(String input) {
      this.input = input;
      return this;
    }

    /** The model's answer to scan (output side). */
    public Builder output(String output) {
      this.output = output;
      return this;
    }

    public Builder estimatedCostUsd(Double estimatedCostUsd) {
      this.estimatedCostUsd = estimatedCostUsd;
      return this;
    }

    public Builder model(String model) {
      this.model = model;
      return this;
    }

    public Builder tool(String tool) {
      this.tool = tool;
      return this;
    }

    public Builder metadata(Map<String, String> metadata) {
      this.metadata = metadata;
      return this;
    }

    /** Echoed into the decision log; the key reportUsage settles this call's reserved cost with. */
    public Builder requestId(String requestId) {
      this.requestId = requestId;
      return this;
    }

    /** Set when retrying a call a reviewer approved. */
    public Builder approvalId(String approvalId) {
      this.approvalId = approvalId;
      return this;
    }

    public Builder context(List<ContextItem> context) {
      this.context = context;
      return this;
    }

    public EnforceRequest build() {
      return new EnforceRequest(
          agentId, input, output, estimatedCostUsd, model, tool, metadata, requestId, approvalId,
          context);
    }
  }
}
