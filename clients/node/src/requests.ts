/**
 * The arguments of each call (typed after the generated wire messages), what
 * the client checks before sending, and the wire request it sends. A bad
 * argument throws a local `InvalidRequestError` naming the field.
 */
import {
  Action,
  AgentStatusRequest,
  AuthorizeRequest,
  AwaitApprovalRequest,
  type ContextItem,
  ContextKind,
  EnforceRequest,
  ReportUsageRequest,
  SubmitTraceRequest,
} from "./gen/pdp/v1/policy_decision_service.js";
import { InvalidRequestError } from "./errors.js";

/** Content an agent pulled in, for `context`: `content` is required,
 * `kind` (a `ContextKind`) and `source` are optional. */
export type ContextItemArgs = Pick<ContextItem, "content"> & Partial<ContextItem>;

/** `enforcePolicy` arguments: the fields of the wire `EnforceRequest`;
 * `agentId` is required, everything else optional. `input` is the text about
 * to be sent to the model or tool; `output` a model's answer to scan. */
export type EnforceArgs = Pick<EnforceRequest, "agentId"> &
  Partial<Omit<EnforceRequest, "agentId" | "context">> & { context?: ContextItemArgs[] };

/** An action one agent may be granted on another, by its lowercase name. */
export type ActionName = Lowercase<Exclude<keyof typeof Action, "UNSPECIFIED" | "UNRECOGNIZED">>;

/** `authorize` arguments; `action` is a lowercase name (`"execute"`) or an `Action`. */
export type AuthorizeArgs = Omit<AuthorizeRequest, "action"> & { action: ActionName | Action };

export type AgentStatusArgs = AgentStatusRequest;

/** `reportUsage` arguments: all required; `requestId` is the idempotency key. */
export type ReportUsageArgs = ReportUsageRequest;

/** `awaitApproval` / `waitForApproval` arguments: how long to wait at most,
 * in milliseconds (default: the client's timeout). */
export type AwaitApprovalArgs = Pick<AwaitApprovalRequest, "approvalId"> & { timeoutMs?: number };

/** `submitTrace` arguments: the fields of the wire `SubmitTraceRequest`;
 * `agentId` and `requestId` are required. */
export type SubmitTraceArgs = Pick<SubmitTraceRequest, "agentId" | "requestId"> &
  Partial<Omit<SubmitTraceRequest, "agentId" | "requestId" | "context">> & {
    context?: ContextItemArgs[];
  };

/** `"execute"` and `Action.EXECUTE` alike -> `Action.EXECUTE`, for every
 * action of the contract. */
const ACTIONS: ReadonlyMap<string, Action> = new Map(
  Object.entries(Action)
    .filter(([key]) => key !== "UNSPECIFIED" && key !== "UNRECOGNIZED")
    .flatMap(([key, value]) => [
      [key.toLowerCase(), value],
      [value, value],
    ]),
);
const CONTEXT_KINDS: ReadonlySet<string> = new Set(
  Object.values(ContextKind).filter((k) => k !== ContextKind.UNRECOGNIZED),
);

function refuse(field: string, reason: string): never {
  throw new InvalidRequestError(`${field}: ${reason}`, { field });
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean" || value == null) return String(value);
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads and checks the fields of one argument object; `prefix` names where
 * it sits (`requests[2].`) in the errors it throws. */
class Fields {
  constructor(
    private readonly args: unknown,
    private readonly prefix = "",
  ) {
    if (!isRecord(args)) refuse(prefix.replace(/\.$/, "") || "arguments", `must be an object, got ${describe(args)}`);
  }

  private get(name: string): unknown {
    return (this.args as Record<string, unknown>)[name];
  }

  private path(name: string): string {
    return this.prefix + name;
  }

  /** A required id: a string that is not empty or blank. */
  id(name: string): string {
    const value = this.get(name);
    if (typeof value !== "string" || value.trim() === "") {
      refuse(this.path(name), `required, a non-empty string, got ${describe(value)}`);
    }
    return value;
  }

  /** An optional string; null and undefined mean absent. */
  text(name: string): string | undefined {
    const value = this.get(name);
    if (value == null) return undefined;
    if (typeof value !== "string") refuse(this.path(name), `must be a string, got ${describe(value)}`);
    return value;
  }

  /** A USD amount: a finite number, not negative; null and undefined mean absent. */
  amount(name: string): number | undefined {
    const value = this.get(name);
    if (value == null) return undefined;
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      refuse(this.path(name), `must be a finite number of US dollars, not negative, got ${describe(value)}`);
    }
    return value;
  }

  /** A positive, finite number of milliseconds; undefined when absent. */
  millis(name: string): number | undefined {
    const value = this.get(name);
    if (value == null) return undefined;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      refuse(this.path(name), `must be a finite number of milliseconds above 0, got ${describe(value)}`);
    }
    return value;
  }

  metadata(name: string): Record<string, string> {
    const value = this.get(name);
    if (value == null) return {};
    if (!isRecord(value)) refuse(this.path(name), `must be an object of strings, got ${describe(value)}`);
    for (const [key, item] of Object.entries(value)) {
      if (typeof item !== "string") {
        refuse(`${this.path(name)}[${JSON.stringify(key)}]`, `must be a string, got ${describe(item)}`);
      }
    }
    return { ...(value as Record<string, string>) };
  }

  context(name: string): ContextItem[] {
    const value = this.get(name);
    if (value == null) return [];
    if (!Array.isArray(value)) refuse(this.path(name), `must be an array, got ${describe(value)}`);
    return value.map((item, i) => {
      const fields = new Fields(item, `${this.path(name)}[${i}].`);
      const kind = fields.get("kind") ?? ContextKind.UNSPECIFIED;
      if (typeof kind !== "string" || !CONTEXT_KINDS.has(kind)) {
        refuse(`${this.path(name)}[${i}].kind`, `must be a ContextKind, got ${describe(kind)}`);
      }
      const content = fields.text("content");
      if (content === undefined) refuse(`${this.path(name)}[${i}].content`, "required");
      return { kind: kind as ContextKind, source: fields.text("source") ?? "", content };
    });
  }

  action(name: string): Action {
    const value = this.get(name);
    const action = typeof value === "string" ? ACTIONS.get(value.toLowerCase()) ?? ACTIONS.get(value) : undefined;
    if (action === undefined) {
      const known = [...ACTIONS.keys()].filter((k) => k === k.toLowerCase()).join(", ");
      refuse(this.path(name), `must be one of ${known}, got ${describe(value)}`);
    }
    return action;
  }

  /** Unknown keys are refused: a misspelt option would otherwise be dropped silently. */
  only(names: readonly string[]): void {
    for (const key of Object.keys(this.args as object)) {
      if (!names.includes(key)) refuse(this.path(key), `unknown field (known: ${names.join(", ")})`);
    }
  }
}

const ENFORCE_FIELDS = [
  "agentId",
  "input",
  "output",
  "estimatedCostUsd",
  "model",
  "tool",
  "metadata",
  "requestId",
  "approvalId",
  "context",
] as const;

export function enforceRequest(args: unknown, prefix = ""): EnforceRequest {
  const f = new Fields(args, prefix);
  f.only(ENFORCE_FIELDS);
  return {
    agentId: f.id("agentId"),
    input: f.text("input"),
    output: f.text("output"),
    estimatedCostUsd: f.amount("estimatedCostUsd"),
    model: f.text("model") ?? "",
    tool: f.text("tool") ?? "",
    metadata: f.metadata("metadata"),
    requestId: f.text("requestId") ?? "",
    approvalId: f.text("approvalId") ?? "",
    context: f.context("context"),
  };
}

export function enforceBatchRequests(requests: unknown): EnforceRequest[] {
  if (!Array.isArray(requests)) refuse("requests", `must be an array, got ${describe(requests)}`);
  if (requests.length === 0) refuse("requests", "must not be empty");
  return requests.map((item, i) => enforceRequest(item, `requests[${i}].`));
}

export function authorizeRequest(args: unknown): AuthorizeRequest {
  const f = new Fields(args);
  f.only(["sourceAgentId", "targetAgentId", "action"]);
  return AuthorizeRequest.fromPartial({
    sourceAgentId: f.id("sourceAgentId"),
    targetAgentId: f.id("targetAgentId"),
    action: f.action("action"),
  });
}

export function agentStatusRequest(args: unknown): AgentStatusRequest {
  const f = new Fields(args);
  f.only(["agentId"]);
  return { agentId: f.id("agentId") };
}

export function reportUsageRequest(args: unknown): ReportUsageRequest {
  const f = new Fields(args);
  f.only(["agentId", "costUsd", "requestId"]);
  const agentId = f.id("agentId");
  const costUsd = f.amount("costUsd");
  if (costUsd === undefined) refuse("costUsd", "required");
  return { agentId, costUsd, requestId: f.id("requestId") };
}

/** The wire request and how long the sidecar may hold it, in ms. */
export function awaitApprovalRequest(
  args: unknown,
  defaultTimeoutMs: number,
): { request: AwaitApprovalRequest; timeoutMs: number } {
  const f = new Fields(args);
  f.only(["approvalId", "timeoutMs"]);
  const approvalId = f.id("approvalId");
  const timeoutMs = f.millis("timeoutMs") ?? defaultTimeoutMs;
  return { request: { approvalId, timeout: durationOf(timeoutMs) }, timeoutMs };
}

export function submitTraceRequest(args: unknown): SubmitTraceRequest {
  const f = new Fields(args);
  f.only([
    "agentId",
    "input",
    "output",
    "costUsd",
    "model",
    "tool",
    "metadata",
    "requestId",
    "startedAt",
    "duration",
    "context",
  ]);
  const record = args as Record<string, unknown>;
  const startedAt = record.startedAt;
  if (startedAt != null && !(startedAt instanceof Date && Number.isFinite(startedAt.getTime()))) {
    refuse("startedAt", `must be a valid Date, got ${describe(startedAt)}`);
  }
  const duration = record.duration;
  if (duration != null) {
    const parts = new Fields(duration, "duration.");
    parts.only(["seconds", "nanos"]);
    const seconds = (duration as Record<string, unknown>).seconds;
    if (!Number.isSafeInteger(seconds) || (seconds as number) < 0) {
      refuse("duration.seconds", `must be a whole number of seconds, 0 or more, got ${describe(seconds)}`);
    }
    const nanos = (duration as Record<string, unknown>).nanos ?? 0;
    if (!Number.isInteger(nanos) || (nanos as number) < 0 || (nanos as number) > 999_999_999) {
      refuse("duration.nanos", `must be a whole number from 0 to 999999999, got ${describe(nanos)}`);
    }
  }
  return SubmitTraceRequest.fromPartial({
    agentId: f.id("agentId"),
    input: f.text("input"),
    output: f.text("output"),
    costUsd: f.amount("costUsd") ?? 0,
    model: f.text("model") ?? "",
    tool: f.text("tool") ?? "",
    metadata: f.metadata("metadata"),
    requestId: f.id("requestId"),
    startedAt: startedAt ?? undefined,
    duration: (duration as SubmitTraceRequest["duration"]) ?? undefined,
    context: f.context("context"),
  });
}

/** Milliseconds as a google.protobuf.Duration. */
export function durationOf(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}
