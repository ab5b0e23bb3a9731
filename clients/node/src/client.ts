/** `PdpClient`: one gRPC channel to one pdp sidecar, and every call it serves. */
import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";

import {
  type AgentState,
  type AgentStatusResponse,
  ApprovalState,
  type AuthorizeResponse,
  type AwaitApprovalResponse,
  type EnforceBatchResponse,
  type EnforceRequest,
  type EnforceResponse,
  PolicyDecisionServiceClient,
  type ReportUsageResponse,
  type SubmitTraceResponse,
} from "./gen/pdp/v1/policy_decision_service.js";
import { decided, type EnforceResult, type FailOpenHandler, undecided, warnFailOpen } from "./decisions.js";
import {
  AgentPausedError,
  ApprovalDeniedError,
  DeadlineExceededError,
  errorForStatus,
  PdpError,
} from "./errors.js";
import {
  type AgentStatusArgs,
  agentStatusRequest,
  type AuthorizeArgs,
  authorizeRequest,
  type AwaitApprovalArgs,
  awaitApprovalRequest,
  type EnforceArgs,
  enforceBatchRequests,
  enforceRequest,
  type ReportUsageArgs,
  reportUsageRequest,
  type SubmitTraceArgs,
  submitTraceRequest,
} from "./requests.js";
import { CHANNEL_OPTIONS, checkedTimeout, DEFAULT_TIMEOUT_MS } from "./settings.js";
import { EnforceStream } from "./stream.js";

export interface PdpClientOptions {
  /** Deadline of every call, in milliseconds, unless the call gives its own
   * (default 1000). */
  timeoutMs?: number;
  /** When true, `enforcePolicy` (and batch and stream items) allow the call
   * when the sidecar cannot be reached or misses the deadline, instead of
   * throwing `SidecarUnavailableError`. Default false: fail closed. */
  failOpen?: boolean;
  /** Called on each fail-open allow; the default emits a process warning. */
  onFailOpen?: FailOpenHandler;
  /** Default: insecure (a sidecar on loopback or a Unix socket). For TLS,
   * `credentials.createSsl(ca, key, cert)` (mutual TLS with a client key and
   * certificate). */
  credentials?: ChannelCredentials;
  /** The agent's caller token, sent with every call (`x-pdp-caller-token`)
   * to a sidecar run with `--require-caller-token`. Default:
   * `process.env.PDP_CALLER_TOKEN`. */
  callerToken?: string;
  /** Extra gRPC channel options, over the client's defaults. */
  channelOptions?: ChannelOptions;
}

/** Per-call settings: a deadline of its own, and a signal to abandon it
 * (the promise then rejects with the signal's reason). */
export interface CallSettings {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One answer of `enforceBatch`, as `Promise.allSettled` gives them:
 * `fulfilled` with the result, or `rejected` with the error `enforcePolicy`
 * would have thrown for that request (`PolicyBlockedError`, ...). */
export type EnforceOutcome = PromiseSettledResult<EnforceResult>;

type Done<T> = (error: ServiceError | null, value?: T) => void;

/** The metadata key of the caller token. */
export const CALLER_TOKEN_METADATA = "x-pdp-caller-token";

function checkedCallerToken(token: unknown): string | undefined {
  if (token === undefined) return undefined;
  if (typeof token !== "string" || token === "" || token.trim() !== token || !/^[\x21-\x7e]+$/.test(token)) {
    throw new TypeError("callerToken must be printable ASCII without white space");
  }
  return token;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A client of one pdp sidecar. `target` is `"host:port"` or
 * `"unix:/path/to/socket"` (any gRPC target). One channel is opened for the
 * client's lifetime: share one client, and `close()` it when done.
 *
 * Every call has a deadline. The client fails closed: when the sidecar
 * cannot be reached, has no snapshot yet, or misses the deadline, calls
 * reject with `SidecarUnavailableError` (`DeadlineExceededError` for the
 * deadline), unless `failOpen` says otherwise for `enforcePolicy`.
 */
export class PdpClient {
  readonly target: string;
  readonly timeoutMs: number;
  readonly failOpen: boolean;
  private readonly stub: PolicyDecisionServiceClient;
  private readonly onFailOpen: FailOpenHandler | undefined;
  private readonly callerToken: string | undefined;
  private closed = false;

  constructor(target: string, options: PdpClientOptions = {}) {
    if (typeof target !== "string" || target.trim() === "") {
      throw new TypeError(`target must be "host:port" or "unix:/path", got ${String(target)}`);
    }
    this.target = target;
    this.timeoutMs = checkedTimeout(options.timeoutMs, DEFAULT_TIMEOUT_MS);
    this.failOpen = options.failOpen === true;
    this.onFailOpen = this.failOpen ? (options.onFailOpen ?? warnFailOpen) : undefined;
    this.callerToken = checkedCallerToken(options.callerToken ?? (process.env.PDP_CALLER_TOKEN || undefined));
    this.stub = new PolicyDecisionServiceClient(target, options.credentials ?? credentials.createInsecure(), {
      ...CHANNEL_OPTIONS,
      ...options.channelOptions,
    });
  }

  /**
   * Asks whether `agentId` may make a call, before it makes it. Resolves when
   * the call may proceed (`ALLOW`, `ALLOW_WITH_WARNINGS`) or must wait for a
   * reviewer (`PENDING_APPROVAL`, see `approvalId` and `waitForApproval`).
   *
   * Rejects with `PolicyBlockedError` when a block-mode policy fired,
   * `AgentPausedError` when the agent is paused, `SidecarUnavailableError`
   * when no decision could be had (unless the client fails open), and
   * `InvalidRequestError` when the request was refused (`local` when the
   * client refused it before sending: an empty `agentId`, a negative or
   * non-finite `estimatedCostUsd`).
   */
  async enforcePolicy(args: EnforceArgs, settings: CallSettings = {}): Promise<EnforceResult> {
    const request = enforceRequest(args);
    let response: EnforceResponse;
    try {
      response = await this.unary("Enforce", settings, (m, o, done) => this.stub.enforce(request, m, o, done));
    } catch (error) {
      return undecided(error, request.agentId, this.onFailOpen);
    }
    return decided(response, request.agentId);
  }

  /** Decides many requests in one call; one outcome per request, in order.
   * A request the client refuses before sending rejects the whole batch with
   * `InvalidRequestError` naming it (`requests[2].agentId`). */
  async enforceBatch(requests: EnforceArgs[], settings: CallSettings = {}): Promise<EnforceOutcome[]> {
    const checked: EnforceRequest[] = enforceBatchRequests(requests);
    let responses: EnforceResponse[];
    try {
      const answer = await this.unary<EnforceBatchResponse>("EnforceBatch", settings, (m, o, done) =>
        this.stub.enforceBatch({ requests: checked }, m, o, done),
      );
      responses = answer.responses;
    } catch (error) {
      // No answer at all: each request fails open, or the batch rejects.
      return checked.map((r) => ({ status: "fulfilled", value: undecided(error, r.agentId, this.onFailOpen) }));
    }
    if (responses.length !== checked.length) {
      throw new PdpError(`sidecar answered ${responses.length} decisions for ${checked.length} requests`);
    }
    return responses.map((response, i) => settled(() => decided(response, checked[i]!.agentId)));
  }

  /** Opens a stream of Enforce calls (one connection, many requests, each
   * with its own answer); see `EnforceStream`. */
  enforceStream(): EnforceStream {
    this.assertOpen();
    const call = this.stub.enforceStream(this.metadata(), {});
    return new EnforceStream(call, { target: this.target, timeoutMs: this.timeoutMs, failOpen: this.onFailOpen });
  }

  /** Whether one agent may perform `action` on another now. A denial is a
   * result (`allowed` false, `denial` says why), not an error. Always fails
   * closed. */
  async authorize(args: AuthorizeArgs, settings: CallSettings = {}): Promise<AuthorizeResponse> {
    const request = authorizeRequest(args);
    return this.unary("Authorize", settings, (m, o, done) => this.stub.authorize(request, m, o, done));
  }

  /** The agent's kill-switch state, its spend against its budgets and the
   * sidecar's active snapshot. */
  async agentStatus(args: AgentStatusArgs, settings: CallSettings = {}): Promise<AgentState> {
    const request = agentStatusRequest(args);
    const answer = await this.unary<AgentStatusResponse>("AgentStatus", settings, (m, o, done) =>
      this.stub.agentStatus(request, m, o, done),
    );
    return answer.state ?? missingState();
  }

  /**
   * The agent's state now, then again on every change (pause, resume, a new
   * snapshot), as an async iterator:
   *
   * ```ts
   * for await (const state of pdp.watchAgentStatus({ agentId }, { signal })) { ... }
   * ```
   *
   * The first state must come within the deadline; after that the stream
   * stays open until `break`, the signal, `close()`, or an error.
   */
  async *watchAgentStatus(args: AgentStatusArgs, settings: CallSettings = {}): AsyncGenerator<AgentState> {
    const request = agentStatusRequest(args);
    const timeoutMs = checkedTimeout(settings.timeoutMs, this.timeoutMs);
    const { signal } = settings;
    signal?.throwIfAborted();
    this.assertOpen();
    const call = this.stub.watchAgentStatus(request, this.metadata(), {});
    let timedOut = false;
    const cancel = (): void => {
      call.on("error", () => {}); // the CANCELLED status is expected now
      call.cancel();
    };
    const firstAnswer = setTimeout(() => {
      timedOut = true;
      cancel();
    }, timeoutMs);
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const message of call) {
        clearTimeout(firstAnswer);
        yield (message as { state?: AgentState }).state ?? missingState();
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timedOut) throw new DeadlineExceededError(this.target, timeoutMs, error);
      throw errorForStatus(error as ServiceError, { method: "WatchAgentStatus", target: this.target, timeoutMs });
    } finally {
      clearTimeout(firstAnswer);
      signal?.removeEventListener("abort", cancel);
      cancel();
    }
  }

  /** Records what a call actually cost, for the agent's budgets. Idempotent
   * by `requestId`: the same report again adds nothing (`duplicate` true). */
  async reportUsage(args: ReportUsageArgs, settings: CallSettings = {}): Promise<ReportUsageResponse> {
    const request = reportUsageRequest(args);
    return this.unary("ReportUsage", settings, (m, o, done) => this.stub.reportUsage(request, m, o, done));
  }

  /** One bounded wait for a `PENDING_APPROVAL` decision: the sidecar answers
   * once the approval is decided or `timeoutMs` (default: the client's
   * timeout) has passed, with the approval's `state`, whichever it is. */
  async awaitApproval(args: AwaitApprovalArgs, settings: CallSettings = {}): Promise<AwaitApprovalResponse> {
    const { request, timeoutMs } = awaitApprovalRequest(args, this.timeoutMs);
    // The sidecar may hold the call for timeoutMs; the deadline adds the
    // usual allowance for its answer.
    const deadline = timeoutMs + checkedTimeout(settings.timeoutMs, this.timeoutMs);
    return this.unary("AwaitApproval", { ...settings, timeoutMs: deadline }, (m, o, done) =>
      this.stub.awaitApproval(request, m, o, done),
    );
  }

  /** Waits up to `timeoutMs` for a reviewer to approve: resolves when
   * approved; rejects with `ApprovalDeniedError` when denied, expired, or
   * still pending when the wait ends. Fail closed: run the held call only
   * when this resolves. */
  async waitForApproval(args: AwaitApprovalArgs, settings: CallSettings = {}): Promise<AwaitApprovalResponse> {
    const { request, timeoutMs } = awaitApprovalRequest(args, this.timeoutMs);
    const { approvalId } = request;
    const until = Date.now() + timeoutMs;
    for (;;) {
      const started = Date.now();
      const answer = await this.awaitApproval({ approvalId, timeoutMs: Math.max(until - started, 1) }, settings);
      if (answer.state === ApprovalState.APPROVED) return answer;
      if (answer.state !== ApprovalState.PENDING) {
        const by = answer.reviewer ? ` by ${answer.reviewer}` : "";
        const comment = answer.comment ? `: ${answer.comment}` : "";
        throw new ApprovalDeniedError(approvalId, answer, `approval ${approvalId} ${answer.state}${by}${comment}`);
      }
      if (Date.now() >= until) {
        throw new ApprovalDeniedError(approvalId, answer, `approval ${approvalId} still pending after ${timeoutMs} ms`);
      }
      // A sidecar that answers "pending" at once is not waited on in a busy loop.
      if (Date.now() - started < 100) await sleep(Math.min(100, until - Date.now()));
    }
  }

  /** Records a finished call for evaluation after the fact (violations
   * become incidents, the cost counts as spend). Rejects with
   * `AgentPausedError` for a paused agent. */
  async submitTrace(args: SubmitTraceArgs, settings: CallSettings = {}): Promise<SubmitTraceResponse> {
    const request = submitTraceRequest(args);
    try {
      return await this.unary("SubmitTrace", settings, (m, o, done) => this.stub.submitTrace(request, m, o, done));
    } catch (error) {
      if (error instanceof PdpError && error.code === status.FAILED_PRECONDITION) {
        throw new AgentPausedError(request.agentId, error.message, "", error.code);
      }
      throw error;
    }
  }

  /** Closes the channel; calls in flight are cancelled. Idempotent. */
  /** The metadata every call sends: the caller token, if any. */
  private metadata(): Metadata {
    const metadata = new Metadata();
    if (this.callerToken !== undefined) metadata.set(CALLER_TOKEN_METADATA, this.callerToken);
    return metadata;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stub.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new PdpError("the client is closed");
  }

  private unary<T>(
    method: string,
    settings: CallSettings,
    start: (metadata: Metadata, options: CallOptions, done: Done<T>) => ClientUnaryCall,
  ): Promise<T> {
    const timeoutMs = checkedTimeout(settings.timeoutMs, this.timeoutMs);
    const { signal } = settings;
    signal?.throwIfAborted();
    this.assertOpen();
    return new Promise<T>((resolve, reject) => {
      let call: ClientUnaryCall | undefined;
      const abort = (): void => call?.cancel();
      signal?.addEventListener("abort", abort, { once: true });
      // No wait for ready: an unreachable sidecar fails the call at once
      // instead of holding it until the deadline.
      call = start(this.metadata(), { deadline: Date.now() + timeoutMs }, (error, value) => {
        signal?.removeEventListener("abort", abort);
        if (signal?.aborted) reject(signal.reason);
        else if (error) reject(errorForStatus(error, { method, target: this.target, timeoutMs }));
        else resolve(value as T);
      });
    });
  }
}

function settled(outcome: () => EnforceResult): EnforceOutcome {
  try {
    return { status: "fulfilled", value: outcome() };
  } catch (reason) {
    return { status: "rejected", reason };
  }
}

function missingState(): never {
  throw new PdpError("sidecar answered without an agent state");
}
