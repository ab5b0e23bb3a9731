package dev.pdp.client;

import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;
import pdp.v1.PolicyDecisionServiceGrpc;
import pdp.v1.PolicyDecisionServiceGrpc.PolicyDecisionServiceBlockingStub;
import pdp.v1.PolicyDecisionServiceGrpc.PolicyDecisionServiceFutureStub;
import pdp.v1.PolicyDecisionServiceGrpc.PolicyDecisionServiceStub;
import pdp.v1.PolicyDecisionServiceOuterClass.AgentStatusRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.AuthorizeRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.AwaitApprovalRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceBatchRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.ReportUsageRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.WatchAgentStatusRequest;

/**
 * A client of one pdp sidecar. Thread-safe; make one per process and close
 * it when done.
 *
 * <pre>{@code
 * try (PdpClient pdp = PdpClient.builder("127.0.0.1:50051").build()) {   // or "unix:/run/pdp.sock"
 *   EnforceResult result = pdp.enforce(EnforceRequest.builder("my-chatbot").input(prompt).build());
 * } catch (PolicyBlockedException blocked) {
 *   // blocked.violations() says which policies fired
 * } catch (AgentPausedException paused) {
 *   // paused.reason()
 * }
 * }</pre>
 *
 * <p>Every call has a deadline: the client's timeout (default one second),
 * or another for a view made by {@link #withTimeout(Duration)}. Each call
 * comes blocking ({@code enforce}) and future-based ({@code enforceAsync},
 * a {@link CompletableFuture} that completes exceptionally with the same
 * exceptions). Calls fail closed: an unreachable sidecar is a {@link
 * SidecarUnavailableException}, never an allow, unless the client was built
 * with {@code failOpen(true)}.
 */
public final class PdpClient implements AutoCloseable {
  /** The deadline of a call when none is set; a local decision takes well under a millisecond. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(1);

  private static final Metadata.Key<String> CALLER_TOKEN =
      Metadata.Key.of("x-pdp-caller-token", Metadata.ASCII_STRING_MARSHALLER);

  private static final Logger LOG = Logger.getLogger(PdpClient.class.getName());
  // How long one AwaitApproval of waitForApproval waits before asking again.
  private static final Duration APPROVAL_POLL = Duration.ofSeconds(30);

  private final ManagedChannel channel;
  private final boolean ownsChannel;
  private final String target;
  private final Duration timeout;
  private final boolean failOpen;
  private final PolicyDecisionServiceBlockingStub blocking;
  private final PolicyDecisionServiceFutureStub future;
  private final PolicyDecisionServiceStub async;

  private PdpClient(ManagedChannel channel, boolean ownsChannel, String target, Duration timeout, boolean failOpen) {
    this.channel = channel;
    this.ownsChannel = ownsChannel;
    this.target = target;
    this.timeout = timeout;
    this.failOpen = failOpen;
    this.blocking = PolicyDecisionServiceGrpc.newBlockingStub(channel);
    this.future = PolicyDecisionServiceGrpc.newFutureStub(channel);
    this.async = PolicyDecisionServiceGrpc.newStub(channel);
  }

  /** A builder for a client of the sidecar at {@code target}: "host:port", or "unix:/path". */
  public static Builder builder(String target) {
    return new Builder(target);
  }

  /** Configures a {@link PdpClient}. */
  public static final class Builder {
    private final String target;
    private Duration timeout = DEFAULT_TIMEOUT;
    private boolean failOpen;
    private String callerToken = System.getenv("PDP_CALLER_TOKEN");

    private Builder(String target) {
      this.target = target;
    }

    /**
     * The agent's caller token, sent with every call ({@code x-pdp-caller-token})
     * to a sidecar run with {@code --require-caller-token} (default: the
     * {@code PDP_CALLER_TOKEN} environment variable). A token that cannot act as
     * the agent a call names is refused with {@link CallerRefusedException}.
     */
    public Builder callerToken(String token) {
      if (token == null || token.isEmpty() || !token.matches("[\\x21-\\x7e]+")) {
        throw new IllegalArgumentException("the caller token must be printable ASCII without white space");
      }
      this.callerToken = token;
      return this;
    }

    /** The deadline of every call (default {@link #DEFAULT_TIMEOUT}); must be positive. */
    public Builder timeout(Duration timeout) {
      if (timeout == null || timeout.isZero() || timeout.isNegative()) {
        throw new IllegalArgumentException("timeout must be greater than 0, got " + timeout);
      }
      this.timeout = timeout;
      return this;
    }

    /**
     * With true, {@code enforce} allows a call (with {@code failOpen()} set on
     * the result, and a warning logged) when the sidecar cannot be reached or
     * misses the deadline. Default false: fail closed. No other call fails open.
     */
    public Builder failOpen(boolean failOpen) {
      this.failOpen = failOpen;
      return this;
    }

    /**
     * Makes the client and starts connecting in the background, so the first
     * call does not pay for the connection. A call to a sidecar that is down
     * fails at once rather than waiting for it.
     */
    public PdpClient build() {
      if (target == null || target.isBlank()) {
        throw new IllegalArgumentException("target must be 'host:port' or 'unix:/path', got '" + target + "'");
      }
      var builder =
          Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
              // Ping only while calls are in flight, and rarely: servers refuse
              // clients that ping idle connections too often.
              .keepAliveTime(60, TimeUnit.SECONDS)
              .keepAliveTimeout(20, TimeUnit.SECONDS)
              .keepAliveWithoutCalls(false);
      if (callerToken != null && !callerToken.isEmpty()) {
        Metadata headers = new Metadata();
        headers.put(CALLER_TOKEN, callerToken);
        builder.intercept(MetadataUtils.newAttachHeadersInterceptor(headers));
      }
      ManagedChannel channel = builder.build();
      channel.getState(true);
      return new PdpClient(channel, true, target, timeout, failOpen);
    }
  }

  /** The sidecar address the client was made with. */
  public String target() {
    return target;
  }

  /** The deadline of this client's calls. */
  public Duration timeout() {
    return timeout;
  }

  /** A view of this client whose calls have another deadline; it shares the connection (closing it does nothing). */
  public PdpClient withTimeout(Duration timeout) {
    Duration checked = new Builder(target).timeout(timeout).timeout;
    return new PdpClient(channel, false, target, checked, failOpen);
  }

  /**
   * Waits, at most {@code wait}, until the connection to the sidecar is up;
   * true when it is. A fresh JVM can take most of a second to load the
   * network stack, which a first call would spend out of its deadline: call
   * this once at start-up. Calls fail closed whatever it returns.
   */
  public boolean awaitReady(Duration wait) {
    long end = System.nanoTime() + wait.toNanos();
    while (true) {
      ConnectivityState state = channel.getState(true);
      if (state == ConnectivityState.READY) {
        return true;
      }
      long left = end - System.nanoTime();
      if (left <= 0 || state == ConnectivityState.SHUTDOWN) {
        return false;
      }
      CountDownLatch changed = new CountDownLatch(1);
      channel.notifyWhenStateChanged(state, changed::countDown);
      try {
        changed.await(left, TimeUnit.NANOSECONDS);
      } catch (InterruptedException interrupted) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
  }

  /** The channel, for generated-stub calls this client does not wrap ({@code pdp.v1}). */
  public ManagedChannel channel() {
    return channel;
  }

  private <S extends AbstractStub<S>> S deadline(S stub, Duration deadline) {
    return stub.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
  }

  private <R> R blockingCall(String method, Duration deadline, Function<PolicyDecisionServiceBlockingStub, R> send) {
    try {
      return send.apply(deadline(blocking, deadline));
    } catch (StatusRuntimeException error) {
      throw Errors.forStatus(error, method, target, deadline);
    }
  }

  private <M, R> CompletableFuture<R> futureCall(
      String method,
      Duration deadline,
      Function<PolicyDecisionServiceFutureStub, ListenableFuture<M>> send,
      Function<M, R> convert) {
    CompletableFuture<R> result = new CompletableFuture<>();
    ListenableFuture<M> call = send.apply(deadline(future, deadline));
    Futures.addCallback(
        call,
        new FutureCallback<M>() {
          @Override
          public void onSuccess(M response) {
            try {
              result.complete(convert.apply(response));
            } catch (PdpException decided) {
              result.completeExceptionally(decided);
            }
          }

          @Override
          public void onFailure(Throwable error) {
            result.completeExceptionally(Errors.forStatus(error, method, target, deadline));
          }
        },
        MoreExecutors.directExecutor());
    // Cancelling the future cancels the RPC.
    result.whenComplete((value, error) -> call.cancel(true));
    return result;
  }

  private static <R> CompletableFuture<R> refused(PdpException error) {
    return CompletableFuture.failedFuture(error);
  }

  private EnforceResult allowUnchecked(String agentId, SidecarUnavailableException error) {
    LOG.log(
        Level.WARNING,
        "allowing agent ''{0}'' without a policy decision (fail open): {1}",
        new Object[] {agentId, error.getMessage()});
    return EnforceResult.failedOpen();
  }

  /**
   * Asks whether an LLM or tool call may go ahead ({@code input}), or scans a
   * model's answer ({@code output}), masking PII where a policy says so.
   *
   * @return the decision: ALLOW, ALLOW_WITH_WARNINGS or PENDING_APPROVAL
   * @throws PolicyBlockedException for a BLOCK decision
   * @throws AgentPausedException when the agent is paused
   * @throws SidecarUnavailableException when no decision could be had (unless failing open)
   * @throws InvalidRequestException for a request that cannot succeed as it is
   */
  public EnforceResult enforce(EnforceRequest request) {
    var message = Requests.enforceRequest(request, "");
    pdp.v1.PolicyDecisionServiceOuterClass.EnforceResponse response;
    try {
      response = blockingCall("Enforce", timeout, stub -> stub.enforce(message));
    } catch (SidecarUnavailableException unavailable) {
      if (failOpen) {
        return allowUnchecked(request.agentId(), unavailable);
      }
      throw unavailable;
    }
    return Convert.enforceResult(response, request.agentId());
  }

  /** {@link #enforce} as a future. */
  public CompletableFuture<EnforceResult> enforceAsync(EnforceRequest request) {
    pdp.v1.PolicyDecisionServiceOuterClass.EnforceRequest message;
    try {
      message = Requests.enforceRequest(request, "");
    } catch (InvalidRequestException invalid) {
      return refused(invalid);
    }
    CompletableFuture<EnforceResult> answer =
        futureCall("Enforce", timeout, stub -> stub.enforce(message),
            response -> Convert.enforceResult(response, request.agentId()));
    if (!failOpen) {
      return answer;
    }
    return answer.exceptionallyCompose(
        error -> error instanceof SidecarUnavailableException unavailable
            ? CompletableFuture.completedFuture(allowUnchecked(request.agentId(), unavailable))
            : CompletableFuture.failedFuture(error));
  }


  /**
   * Decides many requests in one call; the outcomes come in the order of the
   * requests, each its own decision. A malformed request fails the whole
   * batch with {@link InvalidRequestException} naming {@code requests[i].<field>}.
   * It always fails closed.
   */
  public List<BatchOutcome> enforceBatch(List<EnforceRequest> requests) {
    var message = Requests.batchRequest(requests);
    return Convert.batchOutcomes(requests, blockingCall("EnforceBatch", timeout, stub -> stub.enforceBatch(message)));
  }

  /** {@link #enforceBatch} as a future. */
  public CompletableFuture<List<BatchOutcome>> enforceBatchAsync(List<EnforceRequest> requests) {
    EnforceBatchRequest message;
    try {
      message = Requests.batchRequest(requests);
    } catch (InvalidRequestException invalid) {
      return refused(invalid);
    }
    return futureCall("EnforceBatch", timeout, stub -> stub.enforceBatch(message),
        response -> Convert.batchOutcomes(requests, response));
  }

  /**
   * Opens a stream of decisions: {@link EnforceStream#send} requests as they
   * arrive; their answers come to {@code listener}, each with the id given
   * to send. The stream has no deadline; it ends when closed. It always fails
   * closed.
   */
  public EnforceStream enforceStream(EnforceStream.Listener listener) {
    return new EnforceStream(async, target, Objects.requireNonNull(listener, "listener"));
  }


  /**
   * Whether the source agent may perform {@code action} (execute, read,
   * write, delete, invoke, query, subscribe, delegate; any case) on the
   * target agent now. A denial is a result, not an exception.
   */
  public AuthorizeResult authorize(String sourceAgentId, String targetAgentId, String action) {
    var message = Requests.authorizeRequest(sourceAgentId, targetAgentId, action);
    return Convert.authorizeResult(blockingCall("Authorize", timeout, stub -> stub.authorize(message)));
  }

  /** {@link #authorize} as a future. */
  public CompletableFuture<AuthorizeResult> authorizeAsync(String sourceAgentId, String targetAgentId, String action) {
    AuthorizeRequest message;
    try {
      message = Requests.authorizeRequest(sourceAgentId, targetAgentId, action);
    } catch (InvalidRequestException invalid) {
      return refused(invalid);
    }
    return futureCall("Authorize", timeout, stub -> stub.authorize(message), Convert::authorizeResult);
  }

  /** The kill-switch state of an agent, its spend against its budgets, and the sidecar's snapshot. */
  public AgentStatus agentStatus(String agentId) {
    var message = AgentStatusRequest.newBuilder().setAgentId(Requests.requireId(agentId, "agent_id")).build();
    return Convert.agentStatus(blockingCall("AgentStatus", timeout, stub -> stub.agentStatus(message)).getState());
  }

  /** {@link #agentStatus} as a future. */
  public CompletableFuture<AgentStatus> agentStatusAsync(String agentId) {
    try {
      Requests.requireId(agentId, "agent_id");
    } catch (InvalidRequestException invalid) {
      return refused(invalid);
    }
    var message = AgentStatusRequest.newBuilder().setAgentId(agentId).build();
    return futureCall("AgentStatus", timeout, stub -> stub.agentStatus(message),
        response -> Convert.agentStatus(response.getState()));
  }

  /**
   * Streams the agent's state: once on subscription, then on every change
   * (a pause, a resume, a new snapshot). The watch has no deadline; close it
   * to stop. Iterating throws the client's exceptions when the stream fails.
   */
  public StatusWatch watchAgentStatus(String agentId) {
    var message = WatchAgentStatusRequest.newBuilder().setAgentId(Requests.requireId(agentId, "agent_id")).build();
    Context.CancellableContext context = Context.current().withCancellation();
    try {
      return new StatusWatch(context, context.call(() -> blocking.watchAgentStatus(message)), target);
    } catch (StatusRuntimeException error) {
      context.cancel(null);
      throw Errors.forStatus(error, "WatchAgentStatus", target, Duration.ZERO);
    } catch (Exception impossible) {
      context.cancel(null);
      throw new PdpException("cannot open the status watch: " + impossible, null, impossible);
    }
  }


  /**
   * Records the actual cost of a call. Idempotent by {@code requestId}: a
   * retried report returns {@code duplicate()} true and adds nothing; the
   * same id with a different agent or amount is refused
   * ({@link InvalidRequestException}, field {@code request_id}).
   */
  public UsageResult reportUsage(String agentId, double costUsd, String requestId) {
    var message = Requests.usageRequest(agentId, costUsd, requestId);
    var response = blockingCall("ReportUsage", timeout, stub -> stub.reportUsage(message));
    return new UsageResult(response.getDuplicate(), response.getDailySpendUsd());
  }

  /** {@link #reportUsage} as a future. */
  public CompletableFuture<UsageResult> reportUsageAsync(String agentId, double costUsd, String requestId) {
    ReportUsageRequest message;
    try {
      message = Requests.usageRequest(agentId, costUsd, requestId);
    } catch (InvalidRequestException invalid) {
      return refused(invalid);
    }
    return futureCall("ReportUsage", timeout, stub -> stub.reportUsage(message),
        response -> new UsageResult(response.getDuplicate(), response.getDailySpendUsd()));
  }


  /**
   * Waits at most {@code wait} for the approval an enforce answer carried to
   * be decided, and returns its state, still "pending" if nobody decided in
   * time. The call's deadline is {@code wait} plus the client's timeout.
   */
  public ApprovalResult awaitApproval(String approvalId, Duration wait) {
    var message = Requests.approvalRequest(approvalId, wait);
    var response = blockingCall("AwaitApproval", wait.plus(timeout), stub -> stub.awaitApproval(message));
    return Convert.approvalResult(approvalId, response);
  }

  /** {@link #awaitApproval} as a future. */
  public CompletableFuture<ApprovalResult> awaitApprovalAsync(String approvalId, Duration wait) {
    AwaitApprovalRequest message;
    try {
      message = Requests.approvalRequest(approvalId, wait);
    } catch (InvalidRequestException invalid) {
      return refused(invalid);
    }
    return futureCall("AwaitApproval", wait.plus(timeout), stub -> stub.awaitApproval(message),
        response -> Convert.approvalResult(approvalId, response));
  }

  /**
   * Waits until the approval is decided, at most {@code maxWait}.
   *
   * @return the approval, when approved
   * @throws ApprovalDeniedException when denied or expired
   * @throws DeadlineExceededException when still pending after maxWait
   */
  public ApprovalResult waitForApproval(String approvalId, Duration maxWait) {
    Requests.approvalRequest(approvalId, maxWait); // checks the arguments
    long end = System.nanoTime() + maxWait.toNanos();
    while (true) {
      Duration left = Duration.ofNanos(end - System.nanoTime());
      if (left.isNegative() || left.isZero()) {
        throw new DeadlineExceededException(
            "approval " + approvalId + " was not decided within " + maxWait.toMillis() + " ms",
            target, maxWait, null);
      }
      ApprovalResult approval = awaitApproval(approvalId, left.compareTo(APPROVAL_POLL) < 0 ? left : APPROVAL_POLL);
      switch (approval.state()) {
        case "approved":
          return approval;
        case "denied":
        case "expired":
          throw new ApprovalDeniedException(approval);
        default:
          break; // still pending: ask again
      }
    }
  }

  /**
   * Records a finished call for evaluation after the fact, in monitor
   * fashion: violations become incidents, the cost counts as spend. A paused
   * agent's trace is refused ({@link PdpException}, FAILED_PRECONDITION).
   */
  public TraceResult submitTrace(Trace trace) {
    var message = Requests.traceRequest(trace);
    return Convert.traceResult(blockingCall("SubmitTrace", timeout, stub -> stub.submitTrace(message)));
  }

  /** {@link #submitTrace} as a future. */
  public CompletableFuture<TraceResult> submitTraceAsync(Trace trace) {
    pdp.v1.PolicyDecisionServiceOuterClass.SubmitTraceRequest message;
    try {
      message = Requests.traceRequest(trace);
    } catch (InvalidRequestException invalid) {
      return refused(invalid);
    }
    return futureCall("SubmitTrace", timeout, stub -> stub.submitTrace(message), Convert::traceResult);
  }

  /** Closes the connection; calls in flight are cancelled. Idempotent. */
  @Override
  public void close() {
    if (!ownsChannel) {
      return;
    }
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
