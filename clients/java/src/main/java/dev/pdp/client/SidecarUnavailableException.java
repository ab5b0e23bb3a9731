package dev.pdp.client;

import io.grpc.Status;

/**
 * No answer could be had: the sidecar was unreachable or had no active
 * snapshot yet ({@code code()} UNAVAILABLE), or did not answer before the
 * deadline ({@link DeadlineExceededException}, DEADLINE_EXCEEDED). The
 * client fails closed on it: nothing is allowed unless the client was built
 * with {@code failOpen(true)}.
 */
public class SidecarUnavailableException extends PdpException {
  private static final long serialVersionUID = 1L;

  private final String target;

  public SidecarUnavailableException(String message, Status.Code code, String target, Throwable cause) {
    super(message, code, cause);
    this.target = target;
  }

  public String target() {
    return target;
  }

  /** True when the call missed its deadline rather than finding no sidecar. */
  public boolean isDeadlineExceeded() {
    return code() == Status.Code.DEADLINE_EXCEEDED;
  }
}
