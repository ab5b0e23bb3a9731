package dev.pdp.client;

import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Iterator;
import java.util.NoSuchElementException;
import pdp.v1.PolicyDecisionServiceOuterClass.WatchAgentStatusResponse;

/**
 * The states of one agent, as {@link PdpClient#watchAgentStatus} streams
 * them: the first on subscription, then one per change. {@code hasNext()}
 * blocks until the next change; close the watch (from any thread) to stop.
 */
public final class StatusWatch implements Iterator<AgentStatus>, AutoCloseable {
  private final Context.CancellableContext context;
  private final Iterator<WatchAgentStatusResponse> responses;
  private final String target;

  StatusWatch(Context.CancellableContext context, Iterator<WatchAgentStatusResponse> responses, String target) {
    this.context = context;
    this.responses = responses;
    this.target = target;
  }

  /**
   * Waits for the next state.
   *
   * @throws PdpException when the stream failed or the watch was closed
   */
  @Override
  public boolean hasNext() {
    try {
      return responses.hasNext();
    } catch (StatusRuntimeException error) {
      throw Errors.forStatus(error, "WatchAgentStatus", target, Duration.ZERO);
    }
  }

  @Override
  public AgentStatus next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the status watch has ended");
    }
    return Convert.agentStatus(responses.next().getState());
  }

  /** Stops the watch; a blocked {@code hasNext()} then throws. */
  @Override
  public void close() {
    context.cancel(null);
  }
}
