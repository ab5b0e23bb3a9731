package dev.pdp.client;

/**
 * One answer of enforceBatch: a {@code result}, or the {@code error} for a
 * BLOCK ({@link PolicyBlockedException}) or a paused agent
 * ({@link AgentPausedException}); exactly one is non-null.
 */
public record BatchOutcome(EnforceResult result, PdpException error) {}
