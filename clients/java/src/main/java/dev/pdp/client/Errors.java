package dev.pdp.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A failed call's gRPC status to the client's exception. */
final class Errors {
  private Errors() {}

  // "agent_id: required", "metadata['env']: too long": a field path, then ": ".
  private static final Pattern FIELD_PREFIX =
      Pattern.compile("^\\s*([A-Za-z_]\\w*(?:\\.[A-Za-z_]\\w*|\\[[^\\]]*\\])*)\\s*:\\s");

  /** The exception for a call that ended with a non-OK status; timeout is its deadline, for the message. */
  static PdpException forStatus(Throwable error, String method, String target, Duration timeout) {
    Status status = Status.fromThrowable(error);
    Status.Code code = status.getCode();
    String details = status.getDescription() == null ? "" : status.getDescription();
    String detailsOrCode = details.isEmpty() ? code.name() : details;
    return switch (code) {
      case DEADLINE_EXCEEDED ->
          new DeadlineExceededException(
              "sidecar at " + target + " did not answer " + method + " within "
                  + timeout.toMillis() + " ms",
              target, timeout, error);
      case UNAVAILABLE ->
          new SidecarUnavailableException(
              "sidecar at " + target + " is unavailable: " + detailsOrCode, code, target, error);
      case INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ALREADY_EXISTS ->
          new InvalidRequestException(detailsOrCode, code, field(error, details), error);
      case UNIMPLEMENTED ->
          new UnimplementedException(
              "sidecar at " + target + " does not serve " + method + ": " + detailsOrCode,
              method, error);
      case UNAUTHENTICATED, PERMISSION_DENIED -> new CallerRefusedException(detailsOrCode, code, error);
      default ->
          new PdpException(
              "sidecar answered " + code + " to " + method
                  + (details.isEmpty() ? "" : ": " + details),
              code, error);
    };
  }

  /** The exception for a request refused inside a stream, which names its status code. */
  static PdpException forStreamRefusal(
      pdp.v1.PolicyDecisionServiceOuterClass.RequestError refusal, String target) {
    Status.Code code;
    try {
      code = Status.Code.valueOf(refusal.getCode());
    } catch (IllegalArgumentException unknown) {
      code = Status.Code.UNKNOWN;
    }
    // Named as enforce names it: "model", not "request.model".
    String field = refusal.getField().isEmpty() ? null : refusal.getField().replaceFirst("^request\\.", "");
    return switch (code) {
      case INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ALREADY_EXISTS ->
          new InvalidRequestException(refusal.getMessage(), code, field, null);
      case UNAVAILABLE -> new SidecarUnavailableException(refusal.getMessage(), code, target, null);
      case DEADLINE_EXCEEDED ->
          new DeadlineExceededException(refusal.getMessage(), target, Duration.ZERO, null);
      default ->
          new PdpException(
              "sidecar refused the request (" + code + "): " + refusal.getMessage(), code, null);
    };
  }

  /**
   * The field from the google.rpc.BadRequest detail the sidecar attaches,
   * or from the message's "field: reason" form.
   */
  private static String field(Throwable error, String details) {
    com.google.rpc.Status rich = StatusProto.fromThrowable(error);
    if (rich != null) {
      for (Any detail : rich.getDetailsList()) {
        if (detail.is(BadRequest.class)) {
          try {
            for (var violation : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              if (!violation.getField().isEmpty()) {
                return violation.getField();
              }
            }
          } catch (InvalidProtocolBufferException malformed) {
            break; // fall back to the message
          }
        }
      }
    }
    Matcher match = FIELD_PREFIX.matcher(details);
    return match.find() ? match.group(1) : null;
  }
}
