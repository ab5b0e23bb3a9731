package dev.pdp.client;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import pdp.v1.PolicyDecisionServiceGrpc.PolicyDecisionServiceStub;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceStreamItem;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceStreamRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceStreamResponse;
import pdp.v1.PolicyDecisionServiceOuterClass.RequestError;

/**
 * A long-lived stream of decisions, opened by {@link PdpClient#enforceStream}.
 * {@link #send} is thread-safe; answers arrive on gRPC's threads, in the
 * listener.
 *
 * <p>{@code send} queues the request; the stream's writer sends every request
 * queued when it runs in one message (the sidecar answers them in one), never
 * waiting for more, and a lone request alone. A busy stream so pays gRPC's
 * per-message cost once per pack rather than once per request.
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

  // A pack's bounds, the other clients' too: well under the sidecar's (that
  // of an EnforceBatch), and in bytes under the slack any sidecar's message
  // limit leaves above its largest request, so a pack is never refused where
  // its requests alone would not be. A request over the byte bound goes alone.
  static final int MAX_PACK = 100;
  static final int MAX_PACK_BYTES = 60 * 1024;

  // Runs the streams' writers: one task at a time per stream, on a thread
  // of a pool shared by all (idle threads end after a minute).
  private static final ExecutorService WRITERS =
      Executors.newCachedThreadPool(
          task -> {
            Thread thread = new Thread(task, "pdp-enforce-stream-writer");
            thread.setDaemon(true);
            return thread;
          });

  private final String target;
  private final ClientCallStreamObserver<EnforceStreamRequest> requests;
  // Agent ids of the requests sent and not yet answered, by request id, so
  // a paused answer can name its agent.
  private final Map<String, String> agents = new ConcurrentHashMap<>();

  // Guards the queue and the flags; never held while writing.
  private final Object lock = new Object();
  private List<EnforceStreamItem> queued = new ArrayList<>();
  private boolean writerScheduled;
  private boolean completing; // complete() was called
  private boolean closed; // close() was called
  private boolean halfClosed;
  // A message was written and gRPC has not called onReady since: the next
  // waits for it, which comes once the message went to the socket and the
  // answers being delivered were (gRPC runs a call's callbacks in order), so
  // the requests those answers let callers send go together.
  private boolean written;

  EnforceStream(PolicyDecisionServiceStub stub, String target, Listener listener) {
    this.target = target;
    Answers answers = new Answers(listener);
    // Ready only while nothing written is still waiting for the socket: the
    // writer sends a message once the last one has gone, and what is queued
    // meanwhile goes in the next one.
    stub.withOnReadyThreshold(1).enforceStream(answers);
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
      requests.setOnReadyHandler(EnforceStream.this::onReady);
    }

    @Override
    public void onNext(EnforceStreamResponse response) {
      if (response.getAnswersCount() == 0) {
        listener.onAnswer(answer(response.getId(), response.hasError() ? response.getError() : null,
            response.getResponse()));
        return;
      }
      for (var packed : response.getAnswersList()) {
        listener.onAnswer(answer(packed.getId(), packed.hasError() ? packed.getError() : null,
            packed.getResponse()));
      }
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

  private StreamAnswer answer(String id, RequestError refusal, EnforceResponse response) {
    String agentId = agents.remove(id);
    if (refusal != null) {
      return new StreamAnswer(id, null, Errors.forStreamRefusal(refusal, target));
    }
    try {
      return new StreamAnswer(id, Convert.enforceResult(response, agentId == null ? "" : agentId), null);
    } catch (PdpException decided) {
      return new StreamAnswer(id, null, decided);
    }
  }

  /**
   * Queues one request under the caller's id, echoed in its answer. A request
   * the client can check itself is refused here ({@link
   * InvalidRequestException}) and not sent.
   *
   * @throws IllegalStateException after {@link #complete()} or {@link #close()}
   */
  public void send(String id, EnforceRequest request) {
    var item = EnforceStreamItem.newBuilder().setId(id).setRequest(Requests.enforceRequest(request, "")).build();
    synchronized (lock) {
      if (closed || completing) {
        throw new IllegalStateException(closed ? "the stream is closed" : "the stream was completed");
      }
      agents.put(id, request.agentId());
      queued.add(item);
    }
    schedule();
  }

  /** No more requests; the answers to those sent still arrive, then onCompleted. */
  public void complete() {
    synchronized (lock) {
      completing = true;
    }
    schedule();
  }

  /** Ends the stream at once; answers not yet received are lost. */
  @Override
  public void close() {
    synchronized (lock) {
      closed = true;
      queued = new ArrayList<>();
    }
    // gRPC's cancel may race a write; the writer then finds the call cancelled.
    requests.cancel("closed by the client", null);
  }

  private void onReady() {
    synchronized (lock) {
      written = false;
    }
    schedule();
  }

  /** Runs the writer unless it is running, waits for onReady, or has nothing to do. */
  private void schedule() {
    synchronized (lock) {
      if (writerScheduled || written || closed || (queued.isEmpty() && (!completing || halfClosed))) {
        return;
      }
      writerScheduled = true;
    }
    WRITERS.execute(this::write);
  }

  /**
   * The writer: sends what is queued as one pack while the call is ready
   * (the onReady handler runs it again), or half-closes once completing.
   * It stays the only writer until it returns: an onReady that arrives
   * during a write (gRPC's first one may come after the first message was
   * handed over) lets this loop write the next pack, never a second thread,
   * since a call's messages must not be sent concurrently.
   */
  private void write() {
    while (true) {
      List<EnforceStreamItem> pack = null;
      synchronized (lock) {
        if (!closed && !written && !queued.isEmpty() && requests.isReady()) {
          pack = take();
          written = true;
        } else if (!closed && queued.isEmpty() && completing && !halfClosed) {
          halfClosed = true;
        } else {
          writerScheduled = false;
          return;
        }
      }
      try {
        if (pack == null) {
          requests.onCompleted();
        } else {
          requests.onNext(message(pack));
        }
      } catch (IllegalStateException cancelled) {
        // close() cancelled the call meanwhile: nothing more goes.
        synchronized (lock) {
          writerScheduled = false;
        }
        return;
      } catch (RuntimeException failed) {
        // The listener hears of it in onError, as of any broken stream.
        synchronized (lock) {
          closed = true;
          writerScheduled = false;
        }
        requests.cancel("the stream's writer failed", failed);
        return;
      }
    }
  }

  /** The requests of the next message, in order, within a pack's bounds. Holds the lock. */
  private List<EnforceStreamItem> take() {
    int count = 0;
    int bytes = 0;
    for (var item : queued) {
      int size = item.getSerializedSize();
      if (count == MAX_PACK || (count > 0 && bytes + size > MAX_PACK_BYTES)) {
        break;
      }
      count++;
      bytes += size;
    }
    if (count == queued.size()) {
      List<EnforceStreamItem> all = queued;
      queued = new ArrayList<>();
      return all;
    }
    List<EnforceStreamItem> pack = new ArrayList<>(queued.subList(0, count));
    queued.subList(0, count).clear();
    return pack;
  }

  /** One stream message: a lone request as a sidecar that does not know packing reads it, several in items. */
  private static EnforceStreamRequest message(List<EnforceStreamItem> pack) {
    if (pack.size() == 1) {
      var item = pack.get(0);
      return EnforceStreamRequest.newBuilder().setId(item.getId()).setRequest(item.getRequest()).build();
    }
    return EnforceStreamRequest.newBuilder().addAllItems(pack).build();
  }
}
