package dev.pdp.client;

import java.time.Instant;

/**
 * Whether a source agent may act on a target agent now. {@code denial} is
 * null when allowed, else no_grant, grant_expired, action_not_granted,
 * source_paused, target_paused or unknown_agent. {@code grantExpiresAt} is
 * the expiry of the grant that allowed the call, null when it has none.
 */
public record AuthorizeResult(
    boolean allowed, String reason, String denial, Instant grantExpiresAt, long snapshotRevision) {}
