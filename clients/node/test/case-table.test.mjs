// The cross-language case table (clients/testdata/cases.json, format in
// clients/testdata/README.md) through this client, against a real sidecar on
// clients/testdata/snapshot.yaml. The cases run in table order (later usage
// cases depend on earlier ones), then each is checked as its own test.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { PdpClient, PdpError, verifyWebhook } from "@pdp/client";

import { startSidecar, TESTDATA } from "./sidecar.mjs";

const table = JSON.parse(readFileSync(join(TESTDATA, "cases.json"), "utf8"));

/** Table numbers: JSON numbers, or the proto3 JSON strings for non-finite ones. */
function number(value) {
  if (typeof value !== "string") return value;
  return { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, "-Infinity": Number.NEGATIVE_INFINITY }[value];
}

/** A table request as this client's arguments: null means "not given". */
function args(request) {
  const out = {};
  for (const [key, value] of Object.entries(request)) {
    if (value === null) continue;
    out[key] = key === "estimatedCostUsd" || key === "costUsd" ? number(value) : value;
  }
  return out;
}

const calls = {
  enforce: (pdp, r) => pdp.enforcePolicy(args(r)),
  authorize: (pdp, r) => pdp.authorize(args(r)),
  agentStatus: (pdp, r) => pdp.agentStatus(args(r)),
  reportUsage: (pdp, r) => pdp.reportUsage(args(r)),
  awaitApproval: (pdp, r) => pdp.awaitApproval({ approvalId: r.approvalId, timeoutMs: r.timeoutSeconds * 1000 }),
  enforceBatch: async (pdp, r) => ({
    responses: (await pdp.enforceBatch(r.requests.map(args))).map((o) => (o.status === "fulfilled" ? o.value : o.reason)),
  }),
  submitTrace: (pdp, r) => pdp.submitTrace(args(r)),
  verifyWebhook: async (_pdp, r) => ({
    event: verifyWebhook(r.body, r.headers, r.secret, { toleranceSeconds: r.toleranceSeconds }),
  }),
};

/** "ENFORCEMENT_MODE_BLOCK" -> "block": the table's lowercase enum names. */
const lowerName = (prefix) => (value) => {
  const name = value.slice(prefix.length).toLowerCase();
  return name === "unspecified" ? null : name;
};

// How to read a key of `expect` from this client's results and errors, where
// it is not the property of the same name.
const readers = {
  decision: (o) => lowerName("DECISION_")(o.decision).toUpperCase(),
  violationTypes: (o) => o.violations.map((v) => v.policyType),
  maskedInput: (o) => o.maskedInput ?? null,
  maskedOutput: (o) => o.maskedOutput ?? null,
  hasApprovalId: (o) => o.approvalId !== "",
  denial: (o) => lowerName("AUTHORIZE_DENIAL_")(o.denial),
  enforcementMode: (o) => lowerName("ENFORCEMENT_MODE_")(o.enforcementMode),
  severity: (o) => lowerName("SEVERITY_")(o.severity),
  reason: (o) => (o instanceof PdpError ? o.reason : o.pausedReason),
  field: (o) => o.field ?? null,
  // A batch item the client rejected: the error's name.
  error: (o) => (o instanceof PdpError ? o.name : null),
};

function read(object, key) {
  if (key in readers) return readers[key](object);
  if (object !== null && typeof object === "object" && key in object) return object[key];
  throw new Error(`this runner cannot read ${key} from ${object?.constructor?.name}`);
}

function check(object, expected, where = "") {
  for (const [key, want] of Object.entries(expected)) {
    const got = read(object, key);
    if (Array.isArray(want) && want.length > 0 && typeof want[0] === "object") {
      assert.equal(got.length, want.length, `${where}${key}: ${JSON.stringify(got)}`);
      want.forEach((item, i) => check(got[i], item, `${where}${key}[${i}].`));
    } else {
      assert.deepEqual(got, want, `${where}${key}`);
    }
  }
}

describe("the case table", () => {
  let sidecar;
  const outcomes = new Map();

  before(async () => {
    sidecar = await startSidecar({ snapshot: join(TESTDATA, table.snapshot) });
    const pdp = new PdpClient(sidecar.target, { timeoutMs: 5000 });
    try {
      for (const c of table.cases) {
        const call = calls[c.call];
        if (call === undefined) throw new Error(`the table has a call this runner does not know: ${c.call}`);
        try {
          outcomes.set(c.name, { result: await call(pdp, c.request) });
        } catch (error) {
          outcomes.set(c.name, { error });
        }
      }
    } finally {
      pdp.close();
    }
  });

  after(async () => {
    await sidecar?.stop();
  });

  for (const c of table.cases) {
    it(c.name, () => {
      const { result, error } = outcomes.get(c.name);
      const { error: wantedError, ...expected } = c.expect;
      if (wantedError === undefined) {
        assert.equal(error, undefined, `threw ${error?.stack}`);
        check(result, expected);
      } else {
        assert.ok(error instanceof PdpError, `expected ${wantedError}, got ${error?.stack ?? JSON.stringify(result)}`);
        assert.equal(error.name, wantedError, error.stack);
        check(error, expected);
      }
    });
  }
});
