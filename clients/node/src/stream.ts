/**
 * `enforceStream`: many Enforce calls over one long-lived gRPC stream. Each
 * `enforce()` gets its own answer (matched by id), deadline and errors, with
 * the same semantics as `enforcePolicy`. The requests made in one turn of the
 * event loop go in one message (the sidecar answers them in one), so a busy
 * stream pays gRPC's per-message cost once per pack rather than per request.
 */
import { status, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";

import type {
  EnforceStreamAnswer,
  EnforceStreamItem,
  EnforceStreamRequest,
  EnforceStreamResponse,
  RequestError,
} from "./gen/pdp/v1/policy_decision_service.js";
import { EnforceRequest, EnforceResponse } from "./gen/pdp/v1/policy_decision_service.js";
import { decided, type EnforceResult, type FailOpenHandler, undecided } from "./decisions.js";
import { DeadlineExceededError, errorForStatus, PdpError, SidecarUnavailableError } from "./errors.js";
import { type EnforceArgs, enforceRequest } from "./requests.js";
import { checkedTimeout } from "./settings.js";

interface Pending {
  agentId: string;
  resolve(result: EnforceResult): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

export interface StreamContext {
  target: string;
  timeoutMs: number;
  failOpen: FailOpenHandler | undefined;
}

const METHOD = "EnforceStream";

/** A pack's bounds: well under the sidecar's (that of an EnforceBatch), and in
 * bytes under the slack any sidecar's message limit leaves above its largest
 * request. A request over the byte bound goes alone. */
export const MAX_PACK = 100;
export const MAX_PACK_BYTES = 60 * 1024;

/** An open EnforceStream. Call `enforce()` as often as needed, concurrently;
 * `close()` when done. A stream that failed (the sidecar went away, or does
 * not serve EnforceStream) stays failed: every later `enforce()` gets the
 * same error; open a new stream. */
export class EnforceStream {
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private failure: PdpError | undefined;
  private closed = false;
  private readonly finished: Promise<void>;
  // Requests made since the last flush; sent together once this turn of the
  // event loop's code has run (a microtask: no timer, no added delay).
  private queued: EnforceStreamItem[] = [];

  constructor(
    private readonly call: ClientDuplexStream<EnforceStreamRequest, EnforceStreamResponse>,
    private readonly context: StreamContext,
  ) {
    call.on("data", (message: EnforceStreamResponse) => this.answer(message));
    this.finished = new Promise((resolve) => {
      call.on("error", (error: ServiceError) => {
        this.fail(errorForStatus(error, { method: METHOD, ...context }));
        resolve();
      });
      call.on("status", (end: { code: number }) => {
        if (end.code === status.OK) {
          // Once closed, nothing is left waiting; before, the sidecar went away.
          this.fail(new SidecarUnavailableError("the sidecar ended the stream", { target: context.target }));
          resolve();
        }
      });
    });
  }

  /** Decides one request, like `PdpClient.enforcePolicy`. */
  async enforce(args: EnforceArgs, settings: { timeoutMs?: number } = {}): Promise<EnforceResult> {
    const request = enforceRequest(args);
    const timeoutMs = checkedTimeout(settings.timeoutMs, this.context.timeoutMs);
    // A closed stream is the caller's doing, never a reason to fail open.
    if (this.closed) throw new PdpError("the stream is closed");
    if (this.failure !== undefined) return undecided(this.failure, request.agentId, this.context.failOpen);
    const id = String(this.nextId++);
    return new Promise<EnforceResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.settle(request.agentId, resolve, reject, () => {
          throw new DeadlineExceededError(this.context.target, timeoutMs);
        });
      }, timeoutMs);
      this.pending.set(id, { agentId: request.agentId, resolve, reject, timer });
      if (this.queued.push({ id, request }) === 1) queueMicrotask(() => this.flush());
    });
  }

  /** Ends the stream once every answer is in; resolves when the sidecar has
   * closed its side. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.flush();
      this.call.end();
    }
    await this.finished;
  }

  /** Ends the stream now; requests without an answer are rejected. */
  cancel(): void {
    this.closed = true;
    this.fail(new PdpError("the stream was cancelled", { code: status.CANCELLED }));
    this.call.on("error", () => {}); // the CANCELLED status is expected now
    this.call.cancel();
  }

  /** Writes what is queued: a lone request as a sidecar that does not know
   * packing reads it, several packed in `items`, within the bounds. */
  private flush(): void {
    const queued = this.queued;
    this.queued = [];
    if (this.failure !== undefined || queued.length === 0) return;
    let pack: EnforceStreamItem[] = [];
    let bytes = 0;
    const send = (): void => {
      const [first] = pack;
      if (pack.length === 1 && first !== undefined) {
        this.call.write({ id: first.id, request: first.request, items: [] });
      } else if (pack.length > 1) {
        this.call.write({ id: "", items: pack });
      }
      pack = [];
      bytes = 0;
    };
    for (const item of queued) {
      const size = item.id.length + EnforceRequest.encode(item.request ?? EnforceRequest.create()).finish().length;
      if (pack.length === MAX_PACK || (pack.length > 0 && bytes + size > MAX_PACK_BYTES)) send();
      pack.push(item);
      bytes += size;
    }
    send();
  }

  private answer(message: EnforceStreamResponse): void {
    if (message.answers.length > 0) {
      for (const answer of message.answers) this.answerOne(answer);
    } else {
      this.answerOne(message);
    }
  }

  private answerOne(message: EnforceStreamAnswer): void {
    const pending = this.pending.get(message.id);
    if (pending === undefined) return; // answered after its deadline
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    this.settle(pending.agentId, pending.resolve, pending.reject, () => {
      if (message.error) throw this.itemError(message.error);
      return decided(message.response ?? EnforceResponse.create(), pending.agentId);
    });
  }

  private itemError(error: RequestError): PdpError {
    const code = (status as unknown as Record<string, number>)[error.code] ?? status.UNKNOWN;
    // Named as enforcePolicy names it: "model", not "request.model".
    const field = error.field.startsWith("request.") ? error.field.slice("request.".length) : error.field;
    return errorForStatus({ code, details: error.message, field }, { method: METHOD, ...this.context });
  }

  private settle(
    agentId: string,
    resolve: (result: EnforceResult) => void,
    reject: (error: unknown) => void,
    outcome: () => EnforceResult,
  ): void {
    try {
      resolve(outcome());
    } catch (error) {
      try {
        resolve(undecided(error, agentId, this.context.failOpen));
      } catch (final) {
        reject(final);
      }
    }
  }

  private fail(error: PdpError): void {
    this.failure ??= error;
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      this.settle(pending.agentId, pending.resolve, pending.reject, () => {
        throw error;
      });
    }
  }
}
