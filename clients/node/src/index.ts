/**
 * Node.js client for the pdp policy decision sidecar. Ask before an agent acts:
 *
 * ```ts
 * import { PdpClient, PolicyBlockedError, AgentPausedError } from "@pdp/client";
 * const pdp = new PdpClient("127.0.0.1:50051"); // or "unix:/run/pdp.sock"
 * try {
 *   const result = await pdp.enforcePolicy({ agentId: "my-chatbot", input });
 * } catch (err) {
 *   if (err instanceof PolicyBlockedError) { ... err.violations[i].policyType ... }
 *   if (err instanceof AgentPausedError) { ... err.reason ... }
 * }
 * ```
 *
 * Results are the wire messages generated from proto/pdp/v1 (`EnforceResponse`
 * and friends), enums as string enums (`Decision.ALLOW === "DECISION_ALLOW"`).
 */
export { PdpClient } from "./client.js";
export type { CallSettings, EnforceOutcome, PdpClientOptions } from "./client.js";
export type { EnforceResult, FailOpenHandler } from "./decisions.js";
export { EnforceStream } from "./stream.js";
export {
  AgentPausedError,
  ApprovalDeniedError,
  CallerRefusedError,
  DeadlineExceededError,
  InvalidRequestError,
  PdpError,
  PolicyBlockedError,
  SidecarUnavailableError,
  UnimplementedError,
  WebhookVerificationError,
} from "./errors.js";
export type { GrpcStatus } from "./errors.js";
export type {
  ActionName,
  AgentStatusArgs,
  AuthorizeArgs,
  AwaitApprovalArgs,
  ContextItemArgs,
  EnforceArgs,
  ReportUsageArgs,
  SubmitTraceArgs,
} from "./requests.js";
export { DEFAULT_TIMEOUT_MS } from "./settings.js";
export { verifyWebhook } from "./webhooks.js";
export type { VerifyWebhookOptions, WebhookHeaders } from "./webhooks.js";
export {
  Action,
  ApprovalState,
  AuthorizeDenial,
  ContextKind,
  Decision,
  EnforcementMode,
  Severity,
} from "./gen/pdp/v1/policy_decision_service.js";
export type {
  AgentState,
  AuthorizeResponse,
  AwaitApprovalResponse,
  BudgetStatus,
  ContextItem,
  EnforceRequest,
  EnforceResponse,
  PiiFinding,
  ReportUsageResponse,
  SnapshotStatus,
  SubmitTraceResponse,
  Violation,
} from "./gen/pdp/v1/policy_decision_service.js";
