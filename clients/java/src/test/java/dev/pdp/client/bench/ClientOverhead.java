package dev.pdp.client.bench;

import dev.pdp.client.EnforceRequest;
import dev.pdp.client.PdpClient;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import pdp.v1.PolicyDecisionServiceGrpc;
import pdp.v1.PolicyDecisionServiceOuterClass;

/**
 * What the Java client adds to an Enforce call: the same request through
 * {@link PdpClient#enforce} and through the raw blocking stub on the
 * client's own channel, in alternating rounds, with the same deadline.
 * bench/bench_client_go_java.py runs it against a real sidecar.
 */
public final class ClientOverhead {
  private ClientOverhead() {}

  public static void main(String[] args) {
    if (args.length < 1) {
      throw new IllegalArgumentException("usage: ClientOverhead TARGET [CALLS] [ROUNDS]");
    }
    int calls = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 5;
    // A generous deadline: the first calls of a cold JVM load classes.
    try (PdpClient pdp = PdpClient.builder(args[0]).timeout(Duration.ofSeconds(10)).build()) {
      var raw = PolicyDecisionServiceGrpc.newBlockingStub(pdp.channel());
      String input = "What is the capital of France?";
      EnforceRequest request = EnforceRequest.builder("my-chatbot").input(input).build();
      var message = PolicyDecisionServiceOuterClass.EnforceRequest.newBuilder()
          .setAgentId("my-chatbot").setInput(input).build();
      long deadline = pdp.timeout().toNanos();
      Runnable viaClient = () -> pdp.enforce(request);
      Runnable viaStub = () -> raw.withDeadlineAfter(deadline, TimeUnit.NANOSECONDS).enforce(message);
      // Warm up the channel and the JIT on both paths.
      for (int i = 0; i < 3; i++) {
        round(viaClient, calls);
        round(viaStub, calls);
      }
      long[] clientTimes = new long[0];
      long[] stubTimes = new long[0];
      for (int r = 0; r < rounds; r++) {
        clientTimes = concat(clientTimes, round(viaClient, calls));
        stubTimes = concat(stubTimes, round(viaStub, calls));
      }
      double client = median(clientTimes) / 1e3;
      double stub = median(stubTimes) / 1e3;
      System.out.printf("java  client %8.1f µs  raw stub %8.1f µs  ratio %.3f  (median of %d sequential Enforce calls each)%n",
          client, stub, client / stub, clientTimes.length);
    }
  }

  private static long[] round(Runnable call, int calls) {
    long[] took = new long[calls];
    for (int i = 0; i < calls; i++) {
      long started = System.nanoTime();
      call.run();
      took[i] = System.nanoTime() - started;
    }
    return took;
  }

  private static long[] concat(long[] a, long[] b) {
    long[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static double median(long[] times) {
    long[] sorted = times.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }
}
