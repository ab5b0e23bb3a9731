/**
 * What an Enforce answer becomes, shared by `enforcePolicy`, `enforceBatch`
 * and `enforceStream`: a result for a call that may go ahead (or wait for a
 * reviewer), an error for one that must not, and the fail-open result.
 */
import { Decision, EnforceResponse } from "./gen/pdp/v1/policy_decision_service.js";
import { AgentPausedError, PdpError, PolicyBlockedError, SidecarUnavailableError } from "./errors.js";

/** The sidecar's answer to an Enforce call that may proceed (`ALLOW`,
 * `ALLOW_WITH_WARNINGS`) or must wait for a reviewer (`PENDING_APPROVAL`,
 * see `approvalId`). `failOpen` is true only when the sidecar could not be
 * reached and the client was built with `failOpen: true`: then no policy ran,
 * the decision is `ALLOW` and every other field is empty. */
export type EnforceResult = EnforceResponse & { failOpen: boolean };

/** Called when a client built with `failOpen: true` allows a call without a
 * decision; the default writes a warning to stderr. */
export type FailOpenHandler = (error: SidecarUnavailableError, agentId: string) => void;

export const warnFailOpen: FailOpenHandler = (error, agentId) => {
  process.emitWarning(`allowing agent ${JSON.stringify(agentId)} without a policy decision (failOpen): ${error.message}`, {
    code: "PDP_FAIL_OPEN",
  });
};

/** The result of an Enforce answer; throws for BLOCK and AGENT_PAUSED, and
 * for a decision this client does not know (fail closed). */
export function decided(response: EnforceResponse, agentId: string): EnforceResult {
  switch (response.decision) {
    case Decision.ALLOW:
    case Decision.ALLOW_WITH_WARNINGS:
    case Decision.PENDING_APPROVAL:
      return { ...response, failOpen: false };
    case Decision.BLOCK:
      throw new PolicyBlockedError(response);
    case Decision.AGENT_PAUSED:
      throw new AgentPausedError(agentId, response.pausedReason, response.decisionId);
    default:
      throw new PdpError(`sidecar answered an unknown decision (${response.decision})`);
  }
}

/** How an Enforce call that got no decision ends: the fail-open result when
 * the client fails open and the sidecar was unavailable; otherwise `error`
 * is thrown. Answers of the sidecar (a block, a refused request) are never
 * turned into an allow. */
export function undecided(
  error: unknown,
  agentId: string,
  failOpen: FailOpenHandler | undefined,
): EnforceResult {
  if (failOpen === undefined || !(error instanceof SidecarUnavailableError)) throw error;
  failOpen(error, agentId);
  return { ...EnforceResponse.fromPartial({ decision: Decision.ALLOW }), failOpen: true };
}
