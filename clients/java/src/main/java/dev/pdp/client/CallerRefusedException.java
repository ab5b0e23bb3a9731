package dev.pdp.client;

import io.grpc.Status;

/**
 * The sidecar does not let this caller act as the agent the call names: no
 * caller token was sent to a sidecar that requires one (UNAUTHENTICATED), or
 * the token is another agent's, unknown or revoked (PERMISSION_DENIED).
 * Fail-open never applies; retrying cannot help.
 */
public class CallerRefusedException extends PdpException {
  private static final long serialVersionUID = 1L;

  public CallerRefusedException(String message, Status.Code code, Throwable cause) {
    super(message, code, cause);
  }
}
