package dev.pdp.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real {@code pdp serve}, from the repository's venv ({@code $PDP_BIN},
 * default {@code <repo>/.venv/bin/pdp}), with fresh state; {@link #target()}
 * is where it listens.
 */
final class Sidecar implements AutoCloseable {
  static final Path REPO = Path.of(System.getProperty("pdp.repo", "../..")).toAbsolutePath().normalize();
  private static final Pattern LISTENING = Pattern.compile("listening on (\\S+)");
  private static Sidecar shared;

  private final Process process;
  private final Path stateDir;
  private final String target;
  private final List<String> log = Collections.synchronizedList(new ArrayList<>());

  /** The sidecar on examples/policies.yaml that most tests share, stopped when the JVM exits. */
  static synchronized Sidecar shared() {
    if (shared == null) {
      shared = new Sidecar(REPO.resolve("examples/policies.yaml"), "127.0.0.1:0");
      Runtime.getRuntime().addShutdownHook(new Thread(shared::close));
    }
    return shared;
  }

  Sidecar(Path snapshot, String listen, String... extra) {
    String bin = System.getenv().getOrDefault("PDP_BIN", REPO.resolve(".venv/bin/pdp").toString());
    try {
      stateDir = Files.createTempDirectory("pdp-java-test-");
      List<String> command = new ArrayList<>(List.of(bin, "serve", "--snapshot", snapshot.toString(),
          "--state", stateDir.resolve("state.db").toString(), "--listen", listen));
      command.addAll(List.of(extra));
      process =
          new ProcessBuilder(command)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + bin + " (make .venv/.installed, or set PDP_BIN)", e);
    }
    CompletableFuture<String> found = new CompletableFuture<>();
    Thread pump = new Thread(() -> {
      try (BufferedReader lines = new BufferedReader(
          new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = lines.readLine()) != null; ) {
          log.add(line);
          Matcher match = LISTENING.matcher(line);
          if (match.find()) {
            found.complete(match.group(1));
          }
        }
      } catch (IOException ended) {
        // the process is gone
      }
      found.completeExceptionally(new IllegalStateException("pdp serve exited:\n" + String.join("\n", log)));
    }, "pdp-serve-stderr");
    pump.setDaemon(true);
    pump.start();
    try {
      target = found.get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      close();
      throw new IllegalStateException("pdp serve did not listen:\n" + String.join("\n", log), e);
    }
  }

  String target() {
    return target;
  }

  @Override
  public void close() {
    process.destroy(); // SIGTERM: a graceful drain
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor();
      }
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
    }
    try (var files = Files.walk(stateDir)) {
      files.sorted(Collections.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // a temporary directory
    }
  }
}
