package dev.pdp.client;

import io.grpc.Status;
import java.time.Duration;

/**
 * The {@link SidecarUnavailableException} of a call the sidecar did not
 * answer within its deadline ({@link #timeout()}), e.g. a wedged sidecar.
 */
public class DeadlineExceededException extends SidecarUnavailableException {
  private static final long serialVersionUID = 1L;

  private final Duration timeout;

  public DeadlineExceededException(String message, String target, Duration timeout, Throwable cause) {
    super(message, Status.Code.DEADLINE_EXCEEDED, target, cause);
    this.timeout = timeout;
  }

  /** The deadline the call had; zero where none applies (a stream). */
  public Duration timeout() {
    return timeout;
  }
}
