package dev.pdp.client;

/** An AGENT_PAUSED decision: the kill switch is on for the agent; no policy ran. */
public class AgentPausedException extends PdpException {
  private static final long serialVersionUID = 1L;

  private final String agentId;
  private final String reason;
  private final String decisionId;

  public AgentPausedException(String agentId, String reason, String decisionId) {
    super("agent '" + agentId + "' is paused" + (reason.isEmpty() ? "" : ": " + reason));
    this.agentId = agentId;
    this.reason = reason;
    this.decisionId = decisionId;
  }

  public String agentId() {
    return agentId;
  }

  /** Why the agent was paused, as the pause said; may be empty. */
  public String reason() {
    return reason;
  }

  public String decisionId() {
    return decisionId;
  }
}
