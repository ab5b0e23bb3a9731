package dev.pdp.client.bench;

import dev.pdp.client.EnforceRequest;
import dev.pdp.client.EnforceStream;
import dev.pdp.client.PdpClient;
import dev.pdp.client.PdpException;
import dev.pdp.client.StreamAnswer;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import pdp.v1.PolicyDecisionServiceGrpc;
import pdp.v1.PolicyDecisionServiceOuterClass;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceStreamRequest;
import pdp.v1.PolicyDecisionServiceOuterClass.EnforceStreamResponse;

/**
 * Decisions per second of the sidecar's own CPU for the Java client's unary
 * {@code enforce} and its {@link EnforceStream} (which packs), and for a
 * stream sending one request per message through the raw generated stub (as
 * the client did before it packed), at the same concurrency, in alternating
 * rounds. bench/bench_client_go_java.py --bulk runs it against a real
 * sidecar, whose pid it passes for the CPU time (from /proc).
 */
public final class ClientThroughput {
  private static final List<String> MODES = List.of("unary", "lone", "client");
  private static final Map<String, String> DESCRIBE = Map.of(
      "unary", "unary enforce",
      "lone", "EnforceStream, one request per message (raw stub)",
      "client", "Java client's EnforceStream (packs)");

  private final PdpClient pdp;
  private final EnforceRequest request;
  private final PolicyDecisionServiceOuterClass.EnforceRequest message;
  private final int concurrency;
  private final int window;

  private ClientThroughput(PdpClient pdp, String input, int concurrency, int window) {
    this.pdp = pdp;
    this.request = EnforceRequest.builder("my-chatbot").input(input).build();
    this.message = PolicyDecisionServiceOuterClass.EnforceRequest.newBuilder()
        .setAgentId("my-chatbot").setInput(input).build();
    this.concurrency = concurrency;
    this.window = window;
  }

  /** Usage: ClientThroughput TARGET PID INPUT_FILE [SECONDS] [ROUNDS] [CONCURRENCY] [WINDOW]. */
  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      throw new IllegalArgumentException(
          "usage: ClientThroughput TARGET PID INPUT_FILE [SECONDS] [ROUNDS] [CONCURRENCY] [WINDOW]");
    }
    long pid = Long.parseLong(args[1]);
    String input = Files.readString(Path.of(args[2]));
    double seconds = args.length > 3 ? Double.parseDouble(args[3]) : 3;
    int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 5;
    int concurrency = args.length > 5 ? Integer.parseInt(args[5]) : 8;
    int window = args.length > 6 ? Integer.parseInt(args[6]) : 8;
    try (PdpClient pdp = PdpClient.builder(args[0]).timeout(Duration.ofSeconds(10)).build()) {
      pdp.awaitReady(Duration.ofSeconds(10));
      var bench = new ClientThroughput(pdp, input, concurrency, window);
      for (String mode : MODES) {
        bench.drive(mode, Duration.ofSeconds(2)); // warm up the JIT, not recorded
      }
      List<Map<String, double[]>> results = new ArrayList<>();
      for (int index = 0; index < rounds; index++) {
        List<String> order = new ArrayList<>(MODES);
        if (index % 2 == 1) {
          java.util.Collections.reverse(order);
        }
        Map<String, double[]> round = new HashMap<>();
        for (String mode : order) {
          bench.drive(mode, Duration.ofMillis(300));
          double cpu = cpuSeconds(pid);
          int decisions = bench.drive(mode, Duration.ofNanos((long) (seconds * 1e9)));
          round.put(mode, new double[] {decisions, cpuSeconds(pid) - cpu});
        }
        results.add(round);
        System.err.print(".");
      }
      System.err.println();
      System.out.printf("%nJava client: concurrency %d, window %d, %d rounds of %s s per mode%n",
          concurrency, window, rounds, seconds);
      System.out.println("| mode | decisions per sidecar CPU-second | ratio to unary (per CPU) |");
      System.out.println("|---|---|---|");
      for (String mode : MODES) {
        double[] perCpu = results.stream().mapToDouble(r -> r.get(mode)[0] / r.get(mode)[1]).toArray();
        double[] ratios = results.stream()
            .mapToDouble(r -> (r.get(mode)[0] / r.get(mode)[1]) / (r.get("unary")[0] / r.get("unary")[1]))
            .sorted().toArray();
        System.out.printf("| %s | %,.0f | %.2fx [%.2f-%.2f] |%n", DESCRIBE.get(mode), median(perCpu),
            median(ratios), ratios[0], ratios[ratios.length - 1]);
      }
    }
  }

  /** The decisions concurrency callers of mode made in d. */
  private int drive(String mode, Duration d) throws InterruptedException {
    long until = System.nanoTime() + d.toNanos();
    AtomicInteger total = new AtomicInteger();
    AtomicReference<Throwable> failed = new AtomicReference<>();
    List<Thread> callers = new ArrayList<>();
    for (int c = 0; c < concurrency; c++) {
      Thread caller = new Thread(() -> {
        try {
          total.addAndGet(switch (mode) {
            case "unary" -> unary(until);
            case "client" -> clientStream(until);
            default -> loneStream(until);
          });
        } catch (Throwable error) {
          failed.compareAndSet(null, error);
        }
      });
      caller.start();
      callers.add(caller);
    }
    for (Thread caller : callers) {
      caller.join();
    }
    if (failed.get() != null) {
      throw new IllegalStateException(mode + " failed", failed.get());
    }
    return total.get();
  }

  private int unary(long until) {
    int done = 0;
    while (System.nanoTime() < until) {
      pdp.enforce(request);
      done++;
    }
    return done;
  }

  /** Up to window requests in flight on one EnforceStream until the time is up, then their answers. */
  private int clientStream(long until) throws InterruptedException {
    Semaphore inFlight = new Semaphore(window);
    AtomicInteger done = new AtomicInteger();
    CountDownLatch ended = new CountDownLatch(1);
    AtomicReference<Object> failure = new AtomicReference<>();
    try (EnforceStream stream = pdp.enforceStream(new EnforceStream.Listener() {
      @Override
      public void onAnswer(StreamAnswer answer) {
        if (answer.error() != null) {
          failure.compareAndSet(null, answer.error());
        }
        done.incrementAndGet();
        inFlight.release();
      }

      @Override
      public void onError(PdpException error) {
        failure.compareAndSet(null, error);
        ended.countDown();
      }

      @Override
      public void onCompleted() {
        ended.countDown();
      }
    })) {
      for (int id = 0; System.nanoTime() < until; id++) {
        inFlight.acquire();
        stream.send(Integer.toString(id), request);
      }
      stream.complete();
      if (!ended.await(30, TimeUnit.SECONDS) || failure.get() != null) {
        throw new IllegalStateException("the stream failed: " + failure.get());
      }
    }
    return done.get();
  }

  /** clientStream through the generated stub, one request per message. */
  private int loneStream(long until) throws InterruptedException {
    Semaphore inFlight = new Semaphore(window);
    AtomicInteger done = new AtomicInteger();
    CountDownLatch ended = new CountDownLatch(1);
    AtomicReference<Throwable> failure = new AtomicReference<>();
    StreamObserver<EnforceStreamRequest> requests =
        PolicyDecisionServiceGrpc.newStub(pdp.channel()).enforceStream(new StreamObserver<EnforceStreamResponse>() {
          @Override
          public void onNext(EnforceStreamResponse answer) {
            done.incrementAndGet();
            inFlight.release();
          }

          @Override
          public void onError(Throwable error) {
            failure.set(error);
            ended.countDown();
          }

          @Override
          public void onCompleted() {
            ended.countDown();
          }
        });
    for (int id = 0; System.nanoTime() < until; id++) {
      inFlight.acquire();
      requests.onNext(EnforceStreamRequest.newBuilder().setId(Integer.toString(id)).setRequest(message).build());
    }
    requests.onCompleted();
    if (!ended.await(30, TimeUnit.SECONDS) || failure.get() != null) {
      throw new IllegalStateException("the stream failed", failure.get());
    }
    return done.get();
  }

  /** The process's user + system CPU seconds so far, from /proc (clock ticks of 10 ms). */
  private static double cpuSeconds(long pid) throws IOException {
    String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) / 100.0;
  }

  private static double median(double[] values) {
    double[] sorted = values.clone();
    java.util.Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }
}
