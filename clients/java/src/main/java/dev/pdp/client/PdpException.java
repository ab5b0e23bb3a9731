package dev.pdp.client;

import io.grpc.Status;

/**
 * Base of every exception the client throws; all are unchecked.
 *
 * <pre>
 * PdpException                      base; code() is the gRPC status code, if any
 * ├── PolicyBlockedException        a block-mode policy fired (violations())
 * ├── AgentPausedException          the agent is paused by the kill switch
 * ├── SidecarUnavailableException   unreachable or no snapshot yet (UNAVAILABLE)
 * │   └── DeadlineExceededException no answer within the deadline
 * ├── InvalidRequestException       refused, by the client before sending
 * │                                 (isLocal()) or by the sidecar; field()
 * ├── UnimplementedException        the sidecar does not serve the call (yet)
 * ├── ApprovalDeniedException       waitForApproval: denied or expired
 * └── WebhookVerificationException  Webhooks.verify: not authentic
 * </pre>
 */
public class PdpException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final transient Status.Code code;

  public PdpException(String message, Status.Code code, Throwable cause) {
    super(message, cause);
    this.code = code;
  }

  public PdpException(String message) {
    this(message, null, null);
  }

  /**
   * The gRPC status code of the answer that caused this exception; null when
   * the sidecar answered normally (a block, a pause) or nothing was sent.
   */
  public Status.Code code() {
    return code;
  }
}
