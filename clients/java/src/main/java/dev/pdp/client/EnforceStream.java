package dev.pdp.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import pdp.v1.PolicyDecisionServiceGrpc.PolicyDecisionServiceStub;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceStreamRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceStreamResponse;

/**
 * A long-lived stream of decisions, opened by {@link PdpClient#enforceStream}.
 * {@link #send} is thread-safe; answers arrive on gRPC's threads, in the
 * listener.
 */
public final class EnforceStream implements AutoCloseable {
  /** Receives a stream's answers and its end. */
  public interface Listener {
    /** One answer, to the request sent with {@code answer.id()}. */
    void onAnswer(StreamAnswer answer);

    /** The stream failed; no answer follows. */
    default void onError(PdpException error) {}

    /** The stream ended after {@link #complete()}, every answer delivered. */
    default void onCompleted() {}
  }

  private final String target;
  private final ClientCallStreamObserver<EnforceStreamRequest> requests;
  // Agent ids of the requests sent and not yet answered, by request id, so
  // a paused answer can name its agent.
  private final Map<String, String> agents = new ConcurrentHashMap<>();

  EnforceStream(PolicyDecisionServiceStub stub, String target, Listener listener) {
    this.target = target;
    Answers answers = new Answers(listener);
    stub.enforceStream(answers);
    this.requests = answers.requests;
  }

  private final class Answers implements ClientResponseObserver<EnforceStreamRequest, EnforceStreamResponse> {
    private final Listener listener;
    private ClientCallStreamObserver<EnforceStreamRequest> requests;

    Answers(Listener listener) {
      this.listener = listener;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<EnforceStreamRequest> requests) {
      this.requests = requests;
    }

    @Override
    public void onNext(EnforceStreamResponse response) {
      String agentId = agents.remove(response.getId());
      StreamAnswer answer;
      if (response.hasError()) {
        answer = new StreamAnswer(response.getId(), null, Errors.forStreamRefusal(response.getError(), target));
      } else {
        try {
          answer = new StreamAnswer(
              response.getId(), Convert.enforceResult(response.getResponse(), agentId == null ? "" : agentId), null);
        } catch (PdpException decided) {
          answer = new StreamAnswer(response.getId(), null, decided);
        }
      }
      listener.onAnswer(answer);
    }

    @Override
    public void onError(Throwable error) {
      listener.onError(Errors.forStatus(error, "EnforceStream", target, Duration.ZERO));
    }

    @Override
    public void onCompleted() {
      listener.onCompleted();
    }
  }

  /**
   * Sends one request under the caller's id, echoed in its answer. A request
   * the client can check itself is refused here ({@link
   * InvalidRequestException}) and not sent.
   */
  public void send(String id, EnforceRequest request) {
    var message = EnforceStreamRequest.newBuilder().setId(id).setRequest(Requests.enforceRequest(request, "")).build();
    agents.put(id, request.agentId());
    synchronized (requests) {
      requests.onNext(message);
    }
  }

  /** No more requests; the answers to those sent still arrive, then onCompleted. */
  public void complete() {
    synchronized (requests) {
      requests.onCompleted();
    }
  }

  /** Ends the stream at once; answers not yet received are lost. */
  @Override
  public void close() {
    requests.cancel("closed by the client", null);
  }
}
