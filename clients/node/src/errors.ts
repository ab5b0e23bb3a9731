/**
 * Errors the client throws. Every one is a `PdpError`:
 *
 * ```
 * PdpError                     base; .code is the gRPC status code, if any
 * ├── PolicyBlockedError       a block-mode policy fired (.violations)
 * ├── AgentPausedError         the agent is paused by the kill switch (.reason)
 * ├── SidecarUnavailableError  no decision could be had: unreachable, no
 * │   │                        snapshot yet (UNAVAILABLE)
 * │   └── DeadlineExceededError  no answer within the deadline
 * ├── InvalidRequestError      refused before sending (.local), or by the
 * │                            sidecar (INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
 * │                            ALREADY_EXISTS); .field names the field
 * ├── UnimplementedError       the sidecar does not serve this call (UNIMPLEMENTED)
 * ├── ApprovalDeniedError      waitForApproval: denied, expired, or still pending
 * └── WebhookVerificationError verifyWebhook: the signature does not hold
 * ```
 */
import { Metadata, status } from "@grpc/grpc-js";

import type {
  AwaitApprovalResponse,
  EnforceResponse,
  Violation,
} from "./gen/pdp/v1/policy_decision_service.js";
import { EnforcementMode } from "./gen/pdp/v1/policy_decision_service.js";
import { badRequestField } from "./status-details.js";

export type GrpcStatus = status;

/** Base of every error the client throws. */
export class PdpError extends Error {
  /** The gRPC status code of the answer that caused it; undefined when the
   * sidecar answered normally or the client refused before sending. */
  readonly code: GrpcStatus | undefined;

  constructor(message: string, options: { code?: GrpcStatus; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
  }
}

/** The decision was BLOCK: the call must not proceed. `violations` lists
 * every policy that fired, strictest first (monitor and warn ones too). */
export class PolicyBlockedError extends PdpError {
  readonly violations: Violation[];
  readonly decisionId: string;
  readonly snapshotRevision: number;
  /** The sidecar's whole answer. */
  readonly response: EnforceResponse;

  constructor(response: EnforceResponse) {
    const blocking = response.violations.filter((v) => v.enforcementMode === EnforcementMode.BLOCK);
    const names = (blocking.length ? blocking : response.violations).map((v) => v.policyName);
    super(`blocked by policy: ${names.join(", ") || "unknown policy"}`);
    this.violations = response.violations;
    this.decisionId = response.decisionId;
    this.snapshotRevision = response.snapshotRevision;
    this.response = response;
  }
}

/** The agent is paused by the kill switch; no policy ran. */
export class AgentPausedError extends PdpError {
  readonly agentId: string;
  readonly reason: string;
  readonly decisionId: string;

  constructor(agentId: string, reason: string, decisionId = "", code?: GrpcStatus) {
    super(`agent ${JSON.stringify(agentId)} is paused${reason ? `: ${reason}` : ""}`, { code });
    this.agentId = agentId;
    this.reason = reason;
    this.decisionId = decisionId;
  }
}

/** No decision could be had: the sidecar was unreachable or had no active
 * snapshot. The client fails closed: nothing is allowed on this error unless
 * the client was built with `failOpen: true`. */
export class SidecarUnavailableError extends PdpError {
  readonly target: string;

  constructor(message: string, options: { code?: GrpcStatus; target: string; cause?: unknown }) {
    super(message, options);
    this.target = options.target;
  }
}

/** The sidecar did not answer within the call's deadline: a kind of
 * `SidecarUnavailableError`, so it fails closed (or open) the same way. */
export class DeadlineExceededError extends SidecarUnavailableError {
  readonly timeoutMs: number;

  constructor(target: string, timeoutMs: number, cause?: unknown) {
    super(`sidecar at ${target} did not answer within ${timeoutMs} ms`, {
      code: status.DEADLINE_EXCEEDED,
      target,
      cause,
    });
    this.timeoutMs = timeoutMs;
  }
}

/** The request was refused: by the client before sending (`local`; an
 * empty agent id, a negative cost...), or by the sidecar (malformed,
 * oversized, a request id reused for other usage). `field` names the
 * request field at fault (`agentId`, `requests[1].estimatedCostUsd`), when
 * one is; retrying the same request cannot succeed. */
export class InvalidRequestError extends PdpError {
  readonly field: string | undefined;
  /** True when the client refused the request without sending it. */
  readonly local: boolean;

  constructor(message: string, options: { field?: string; code?: GrpcStatus; cause?: unknown }) {
    super(message, options);
    this.field = options.field;
    this.local = options.code === undefined;
  }
}

/** The sidecar does not let this caller act as the agent the call names:
 * no caller token was sent to a sidecar that requires one (UNAUTHENTICATED),
 * or the token is another agent's, unknown or revoked (PERMISSION_DENIED).
 * `failOpen` never applies. */
export class CallerRefusedError extends PdpError {}

/** The sidecar does not serve this call (gRPC UNIMPLEMENTED): it is older
 * than the client, or the call is not built yet. */
export class UnimplementedError extends PdpError {
  readonly method: string;

  constructor(method: string, details: string, cause?: unknown) {
    super(`the sidecar does not serve ${method}${details ? `: ${details}` : ""}`, {
      code: status.UNIMPLEMENTED,
      cause,
    });
    this.method = method;
  }
}

/** `waitForApproval` did not get an approval: the reviewer denied it, it
 * expired undecided, or the wait ended while it was still pending
 * (`state` says which). The held call must not run. */
export class ApprovalDeniedError extends PdpError {
  readonly approvalId: string;
  readonly response: AwaitApprovalResponse;

  constructor(approvalId: string, response: AwaitApprovalResponse, message: string) {
    super(message);
    this.approvalId = approvalId;
    this.response = response;
  }

  get state(): AwaitApprovalResponse["state"] {
    return this.response.state;
  }
}

/** `verifyWebhook`: the message is not signed with the secret, or is
 * outside the time window. */
export class WebhookVerificationError extends PdpError {}

/** `agent_id`, `requests[1].estimated_cost_usd` -> `agentId`,
 * `requests[1].estimatedCostUsd`; bracketed keys are kept as they are. */
export function camelFieldPath(path: string): string {
  return path.replace(/(\[[^\]]*\])|_([a-z0-9])/g, (whole, bracket: string | undefined, c) =>
    bracket ?? (c as string).toUpperCase(),
  );
}

/** What a call that ended with a gRPC status becomes. */
export function errorForStatus(
  error: { code?: number; details?: string; metadata?: Metadata; field?: string },
  call: { method: string; target: string; timeoutMs: number },
): PdpError {
  const code = (error.code ?? status.UNKNOWN) as GrpcStatus;
  const details = error.details ?? "";
  switch (code) {
    case status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(call.target, call.timeoutMs, error);
    case status.UNAVAILABLE:
      return new SidecarUnavailableError(
        `sidecar at ${call.target} is unavailable: ${details || "UNAVAILABLE"}`,
        { code, target: call.target, cause: error },
      );
    case status.INVALID_ARGUMENT:
    case status.RESOURCE_EXHAUSTED:
    case status.ALREADY_EXISTS: {
      const field = error.field || (error.metadata ? badRequestField(error.metadata) : undefined);
      return new InvalidRequestError(details || status[code], {
        code,
        field: field ? camelFieldPath(field) : undefined,
        cause: error,
      });
    }
    case status.UNIMPLEMENTED:
      return new UnimplementedError(call.method, details, error);
    case status.UNAUTHENTICATED:
    case status.PERMISSION_DENIED:
      return new CallerRefusedError(details || status[code], { code, cause: error });
    default:
      return new PdpError(`sidecar answered ${status[code] ?? code}${details ? `: ${details}` : ""}`, {
        code,
        cause: error,
      });
  }
}
