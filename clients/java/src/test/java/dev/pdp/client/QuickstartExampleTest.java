package dev.pdp.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The README's example runs as written, as a single-file program, against a sidecar on the example policies. */
class QuickstartExampleTest {
  @Test
  void quickstartRunsAsWritten() throws IOException, InterruptedException {
    try (Sidecar side = new Sidecar(Sidecar.REPO.resolve("examples/policies.yaml"), "127.0.0.1:0")) {
      Path java = Path.of(System.getProperty("java.home"), "bin", "java");
      Process run = new ProcessBuilder(java.toString(), "-cp", System.getProperty("java.class.path"),
              "examples/Quickstart.java", side.target())
          .redirectErrorStream(true)
          .start();
      String out = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      run.waitFor(60, TimeUnit.SECONDS);
      assertEquals(0, run.exitValue(), out);
      assertEquals(String.join("\n",
          "my-chatbot: ALLOW",
          "my-chatbot: blocked by Block Prompt Injection",
          "support-bot: paused: Detected harmful outputs in production",
          "answer: Your SSN on file is ***-**-6789.",
          "spent today: $0.018",
          "agent-a may execute agent-b: true",
          ""), out);
    }
  }
}
