package dev.pdp.client;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The shared case table (clients/testdata/cases.json), run in table order
 * against a sidecar of its own on clients/testdata/snapshot.yaml with fresh
 * state. Each answer is turned into a JSON object named as the table names
 * things (lowerCamelCase); every key a case expects must be there and match.
 */
class CaseTableTest {
  private static final Path TESTDATA = Sidecar.REPO.resolve("clients/testdata");
  private static final Gson GSON = new GsonBuilder().serializeNulls().create();
  private static Sidecar sidecar;
  private static PdpClient pdp;

  @AfterAll
  static void stop() {
    if (pdp != null) {
      pdp.close();
    }
    if (sidecar != null) {
      sidecar.close();
    }
  }

  @TestFactory
  Stream<DynamicTest> caseTable() throws IOException {
    JsonObject table = JsonParser.parseString(
        Files.readString(TESTDATA.resolve("cases.json"), StandardCharsets.UTF_8)).getAsJsonObject();
    JsonArray cases = table.getAsJsonArray("cases");
    assertFalse(cases.isEmpty(), "cases.json has no cases");
    sidecar = new Sidecar(TESTDATA.resolve(table.get("snapshot").getAsString()), "127.0.0.1:0");
    pdp = PdpClient.builder(sidecar.target()).timeout(Duration.ofSeconds(10)).build();
    List<DynamicTest> tests = new ArrayList<>();
    for (JsonElement element : cases) {
      JsonObject c = element.getAsJsonObject();
      String name = c.get("name").getAsString();
      tests.add(DynamicTest.dynamicTest(name, () -> check(
          name, c.get("call").getAsString(), c.getAsJsonObject("request"), c.getAsJsonObject("expect"))));
    }
    return tests.stream();
  }

  private static void check(String name, String call, JsonObject request, JsonObject expect) {
    Fields fields = new Fields(request);
    Map<String, Object> observed;
    try {
      observed = run(call, fields);
    } catch (PdpException error) {
      observed = observeError(error);
    }
    Assumptions.assumeTrue(observed != null, "the Java client has no '" + call + "' call");
    fields.checkAllRead();
    JsonObject answer = GSON.toJsonTree(observed).getAsJsonObject();
    for (Map.Entry<String, JsonElement> expected : expect.entrySet()) {
      JsonElement got = answer.get(expected.getKey());
      if (got == null) {
        fail(name + ": the answer has no '" + expected.getKey() + "' (answer: " + answer + ")");
      }
      assertTrue(matches(expected.getValue(), got),
          name + ": " + expected.getKey() + ": want " + expected.getValue() + ", got " + got
              + " (answer: " + answer + ")");
    }
  }

  /** The call's answer as the table names it; null for a call this client does not offer. */
  private static Map<String, Object> run(String call, Fields r) {
    switch (call) {
      case "enforce":
        return observe(pdp.enforce(r.enforceRequest()));
      case "enforceBatch": {
        List<EnforceRequest> requests = new ArrayList<>();
        for (JsonElement item : r.array("requests")) {
          requests.add(new Fields(item.getAsJsonObject()).enforceRequest());
        }
        List<Object> answers = new ArrayList<>();
        for (BatchOutcome outcome : pdp.enforceBatch(requests)) {
          answers.add(outcome.error() != null ? observeError(outcome.error()) : observe(outcome.result()));
        }
        return Map.of("responses", answers);
      }
      case "authorize": {
        AuthorizeResult result = pdp.authorize(r.text("sourceAgentId"), r.text("targetAgentId"), r.text("action"));
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("allowed", result.allowed());
        out.put("denial", result.denial());
        out.put("reason", result.reason());
        return out;
      }
      case "agentStatus": {
        AgentStatus status = pdp.agentStatus(r.text("agentId"));
        List<Object> budgets = new ArrayList<>();
        for (AgentStatus.Budget b : status.budgets()) {
          budgets.add(Map.of("policyId", b.policyId(), "policyName", b.policyName(), "period", b.period(),
              "limitUsd", b.limitUsd(), "spentUsd", b.spentUsd()));
        }
        return Map.of("agentName", status.agentName(), "known", status.known(), "paused", status.paused(),
            "reason", status.reason(), "budgets", budgets);
      }
      case "reportUsage": {
        UsageResult result = pdp.reportUsage(r.text("agentId"), r.number("costUsd"), r.text("requestId"));
        return Map.of("duplicate", result.duplicate(), "dailySpendUsd", result.dailySpendUsd());
      }
      case "awaitApproval": {
        Duration wait = Duration.ofNanos((long) (r.number("timeoutSeconds") * 1e9));
        ApprovalResult result = pdp.awaitApproval(r.text("approvalId"), wait);
        return Map.of("state", result.state(), "reviewer", result.reviewer());
      }
      case "submitTrace": {
        TraceResult result = pdp.submitTrace(new Trace(r.text("agentId"), r.optionalText("input"),
            r.optionalText("output"), r.number("costUsd"), r.text("model"), r.text("tool"), r.metadata(),
            r.text("requestId"), null, null, null));
        return Map.of("violationTypes", types(result.violations()), "anomaly", result.anomaly());
      }
      case "verifyWebhook": {
        Map<String, String> headers = new LinkedHashMap<>();
        r.object("headers").entrySet().forEach(e -> headers.put(e.getKey(), e.getValue().getAsString()));
        Double seconds = r.optionalNumber("toleranceSeconds");
        Duration tolerance = seconds == null ? null : Duration.ofNanos((long) (seconds * 1e9));
        Webhooks.Webhook webhook = Webhooks.verify(
            r.text("body").getBytes(StandardCharsets.UTF_8), headers, r.text("secret"), tolerance, Clock.systemUTC());
        return Map.of("event", JsonParser.parseString(webhook.text()));
      }
      default:
        return null;
    }
  }

  private static List<String> types(List<Violation> violations) {
    return violations.stream().map(Violation::policyType).toList();
  }

  private static List<Object> violations(List<Violation> violations) {
    List<Object> out = new ArrayList<>();
    for (Violation v : violations) {
      out.add(Map.of("policyId", v.policyId(), "policyName", v.policyName(), "policyType", v.policyType(),
          "enforcementMode", v.enforcementMode(), "severity", v.severity(), "message", v.message()));
    }
    return out;
  }

  private static Map<String, Object> observe(EnforceResult result) {
    List<Object> findings = new ArrayList<>();
    for (PiiFinding f : result.piiFindings()) {
      findings.add(Map.of("field", f.field(), "piiType", f.piiType(), "start", f.start(), "end", f.end()));
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("decision", result.decision().name());
    out.put("violationTypes", types(result.violations()));
    out.put("violations", violations(result.violations()));
    out.put("maskedInput", result.maskedInput());
    out.put("maskedOutput", result.maskedOutput());
    out.put("piiFindings", findings);
    out.put("hasApprovalId", !result.approvalId().isEmpty());
    return out;
  }

  private static final Pattern SNAKE = Pattern.compile("_([a-z])");

  /** The client's field name (the proto's, "requests[1].agent_id") as the table's ("requests[1].agentId"). */
  private static String tableName(String field) {
    Matcher m = SNAKE.matcher(field);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      m.appendReplacement(out, m.group(1).toUpperCase(java.util.Locale.ROOT));
    }
    return m.appendTail(out).toString();
  }

  private static Map<String, Object> observeError(PdpException error) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("error", error.getClass().getSimpleName().replaceFirst("Exception$", "Error"));
    out.put("message", error.getMessage());
    if (error instanceof PolicyBlockedException blocked) {
      out.put("violationTypes", types(blocked.violations()));
      out.put("violations", violations(blocked.violations()));
    } else if (error instanceof AgentPausedException paused) {
      out.put("reason", paused.reason());
    } else if (error instanceof InvalidRequestException invalid) {
      out.put("field", invalid.field() == null ? null : tableName(invalid.field()));
      out.put("local", invalid.isLocal());
    }
    return out;
  }

  /** Objects compare on the expected keys only, arrays element by element, numbers as doubles. */
  private static boolean matches(JsonElement want, JsonElement got) {
    if (want.isJsonObject()) {
      if (!got.isJsonObject()) {
        return false;
      }
      for (Map.Entry<String, JsonElement> entry : want.getAsJsonObject().entrySet()) {
        JsonElement have = got.getAsJsonObject().get(entry.getKey());
        if (have == null || !matches(entry.getValue(), have)) {
          return false;
        }
      }
      return true;
    }
    if (want.isJsonArray()) {
      if (!got.isJsonArray() || got.getAsJsonArray().size() != want.getAsJsonArray().size()) {
        return false;
      }
      for (int i = 0; i < want.getAsJsonArray().size(); i++) {
        if (!matches(want.getAsJsonArray().get(i), got.getAsJsonArray().get(i))) {
          return false;
        }
      }
      return true;
    }
    if (want.isJsonPrimitive() && want.getAsJsonPrimitive().isNumber()) {
      if (!got.isJsonPrimitive() || !got.getAsJsonPrimitive().isNumber()) {
        return false;
      }
      double expected = want.getAsDouble();
      return Math.abs(got.getAsDouble() - expected) <= 1e-9 * Math.max(1, Math.abs(expected));
    }
    return want.equals(got);
  }

  /** A case's request; every key must be read, so a key the runner does not know fails the case. */
  private static final class Fields {
    private final JsonObject values;
    private final Set<String> read = new HashSet<>();

    Fields(JsonObject values) {
      this.values = values;
    }

    private JsonElement get(String key) {
      read.add(key);
      JsonElement value = values.get(key);
      return value == null || value.isJsonNull() ? null : value;
    }

    void checkAllRead() {
      for (String key : values.keySet()) {
        assertTrue(read.contains(key), "the runner does not read request key '" + key + "'");
      }
    }

    String optionalText(String key) {
      JsonElement value = get(key);
      return value == null ? null : value.getAsString();
    }

    String text(String key) {
      String value = optionalText(key);
      return value == null ? "" : value;
    }

    Double optionalNumber(String key) {
      JsonElement value = get(key);
      if (value == null) {
        return null;
      }
      if (value.getAsJsonPrimitive().isString()) { // proto3 JSON's "NaN", "Infinity", "-Infinity"
        return switch (value.getAsString()) {
          case "NaN" -> Double.NaN;
          case "Infinity" -> Double.POSITIVE_INFINITY;
          case "-Infinity" -> Double.NEGATIVE_INFINITY;
          default -> throw new IllegalArgumentException(key + " is not a number: " + value);
        };
      }
      return value.getAsDouble();
    }

    double number(String key) {
      Double value = optionalNumber(key);
      return value == null ? 0 : value;
    }

    JsonObject object(String key) {
      JsonElement value = get(key);
      return value == null ? new JsonObject() : value.getAsJsonObject();
    }

    JsonArray array(String key) {
      JsonElement value = get(key);
      return value == null ? new JsonArray() : value.getAsJsonArray();
    }

    Map<String, String> metadata() {
      Map<String, String> out = new LinkedHashMap<>();
      object("metadata").entrySet().forEach(e -> out.put(e.getKey(), e.getValue().getAsString()));
      return out;
    }

    EnforceRequest enforceRequest() {
      EnforceRequest request = new EnforceRequest(text("agentId"), optionalText("input"), optionalText("output"),
          optionalNumber("estimatedCostUsd"), text("model"), text("tool"), metadata(), text("requestId"),
          text("approvalId"), null);
      checkAllRead();
      return request;
    }
  }
}
