package dev.pdp.client;

import io.grpc.Status;

/** An UNIMPLEMENTED answer: the sidecar does not serve this call (yet, or at its version). */
public class UnimplementedException extends PdpException {
  private static final long serialVersionUID = 1L;

  private final String method;

  public UnimplementedException(String message, String method, Throwable cause) {
    super(message, Status.Code.UNIMPLEMENTED, cause);
    this.method = method;
  }

  /** The RPC that is not served, e.g. {@code EnforceBatch}. */
  public String method() {
    return method;
  }
}
