package dev.pdp.client;

/**
 * The outcome of an enforce call that lets the call go ahead, or holds it
 * for approval. BLOCK and AGENT_PAUSED are thrown as
 * {@link PolicyBlockedException} and {@link AgentPausedException} instead.
 */
public enum Decision {
  ALLOW,
  ALLOW_WITH_WARNINGS,
  PENDING_APPROVAL
}
