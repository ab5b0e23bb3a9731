package dev.pdp.client;

import io.grpc.Status;

/**
 * A request that cannot succeed as it is. {@link #field()} is the request
 * field at fault, named as in the proto ({@code agent_id},
 * {@code estimated_cost_usd}, {@code requests[1].agent_id}), null when no
 * single field is. {@link #isLocal()} is true when the client refused it
 * before sending ({@code code()} is then null); otherwise the sidecar refused
 * it: malformed (INVALID_ARGUMENT), oversized (RESOURCE_EXHAUSTED), or a
 * usage report that reuses a request id for other usage (ALREADY_EXISTS).
 * It is also what the client throws for an argument it can check itself: an
 * empty agent id, a negative, NaN or infinite amount, an unknown action.
 */
public class InvalidRequestException extends PdpException {
  private static final long serialVersionUID = 1L;

  private final String field;

  public InvalidRequestException(String message, Status.Code code, String field, Throwable cause) {
    super(message, code, cause);
    this.field = field;
  }

  static InvalidRequestException local(String field, String reason) {
    return new InvalidRequestException(field + ": " + reason, null, field, null);
  }

  public String field() {
    return field;
  }

  public boolean isLocal() {
    return code() == null;
  }
}
