// What the Node.js client adds to an Enforce call: PdpClient.enforcePolicy
// (argument checks, request building, error mapping, the result) against a
// raw call of the generated grpc-js stub, both on the same channel to the
// same sidecar, in one run.
//
//   make test-node                             # builds clients/node/dist
//   node bench/client_overhead_node.mjs        # --rounds N --calls N (--quick: a short run)
//
// The sidecar is `pdp serve` on examples/policies.yaml ($PDP_BIN, default
// .venv/bin/pdp); each Enforce carries 1 KB of benign text for my-chatbot.
// A shared machine drifts by tens of percent within seconds, so the run is
// many short rounds, each measuring the stub and the client back to back (in
// alternating order), and the figures are medians of the per-round ratios.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { REPO, startSidecar } from "../clients/node/test/sidecar.mjs";

const DIST = join(REPO, "clients", "node", "dist", "esm");
if (!existsSync(join(DIST, "index.js"))) {
  console.error("clients/node is not built: run `make test-node` (or `npm run build` in clients/node) first");
  process.exit(1);
}
const { PdpClient } = await import(join(DIST, "index.js"));
const { EnforceRequest, PolicyDecisionServiceClient } = await import(join(DIST, "gen", "pdp", "v1", "policy_decision_service.js"));
// The grpc-js the client itself uses (clients/node/node_modules).
const grpc = createRequire(join(REPO, "clients", "node", "package.json"))("@grpc/grpc-js");

const { values: opts } = parseArgs({
  options: {
    rounds: { type: "string", default: "15" },
    calls: { type: "string", default: "400" },
    quick: { type: "boolean", default: false },
  },
});
const rounds = opts.quick ? 3 : Number(opts.rounds);
const calls = opts.quick ? 100 : Number(opts.calls);
const MANY = 32;

const sentence = "Summarise the quarterly report for the finance team and list the three largest changes. ";
const input = sentence.repeat(Math.ceil(1024 / sentence.length)).slice(0, 1024);
const args = { agentId: "my-chatbot", input, model: "gpt-4o", estimatedCostUsd: 0.01 };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];

function rawEnforce(stub) {
  // What a caller of the bare stub writes: a message, a deadline, a promise.
  const request = EnforceRequest.fromPartial(args);
  return new Promise((resolve, reject) =>
    stub.enforce(request, new grpc.Metadata(), { deadline: Date.now() + 1000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
}

async function sequential(call) {
  const times = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await call();
    times.push((performance.now() - start) * 1000);
  }
  return times.slice(Math.floor(calls / 10)); // the first tenth warms up
}

async function throughput(call) {
  let left = calls * 2;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: MANY }, async () => {
      while (left-- > 0) await call();
    }),
  );
  return (calls * 2) / ((performance.now() - start) / 1000);
}

const sidecar = await startSidecar({ snapshot: join(REPO, "examples", "policies.yaml") });
const stub = new PolicyDecisionServiceClient(sidecar.target, grpc.credentials.createInsecure());
const pdp = new PdpClient(sidecar.target, { channelOptions: { channelOverride: stub.getChannel() } });
const sides = { stub: () => rawEnforce(stub), client: () => pdp.enforcePolicy(args) };
try {
  const first = await pdp.enforcePolicy(args);
  if (first.failOpen || !first.decisionId) throw new Error("the client did not get a decision");
  const ratios = { p50: [], p99: [], rps: [] };
  const absolute = { stub: { p50: [], p99: [], rps: [] }, client: { p50: [], p99: [], rps: [] } };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? ["client", "stub"] : ["stub", "client"];
    const got = {};
    for (const side of order) {
      const times = await sequential(sides[side]);
      got[side] = { p50: median(times), p99: quantile(times, 0.99), rps: await throughput(sides[side]) };
      for (const k of ["p50", "p99", "rps"]) absolute[side][k].push(got[side][k]);
    }
    for (const k of ["p50", "p99", "rps"]) ratios[k].push(got.client[k] / got.stub[k]);
  }
  // The client's own work per call, in process: checks, request, result.
  const { enforceRequest } = await import(join(DIST, "requests.js"));
  const { decided } = await import(join(DIST, "decisions.js"));
  const response = await rawEnforce(stub);
  const perCall = (fn) => {
    const n = 20_000;
    const start = performance.now();
    for (let i = 0; i < n; i++) fn();
    return ((performance.now() - start) * 1000) / n;
  };
  const clientWork = median([0, 1, 2, 3, 4].map(() => perCall(() => decided(response, enforceRequest(args).agentId))));
  const stubWork = median([0, 1, 2, 3, 4].map(() => perCall(() => EnforceRequest.fromPartial(args))));
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  console.log(`Node.js client overhead: PdpClient.enforcePolicy vs the generated stub, same channel`);
  console.log(`${os.cpus().length} CPUs (${cpu}), Node ${process.version}; ${rounds} rounds of ${calls} calls, 1 KB Enforce`);
  console.log("");
  console.log("                         stub          client        client / stub (median of rounds)");
  const row = (label, k, unit, digits) =>
    console.log(
      `${label.padEnd(25)}${`${median(absolute.stub[k]).toFixed(digits)} ${unit}`.padEnd(14)}` +
        `${`${median(absolute.client[k]).toFixed(digits)} ${unit}`.padEnd(14)}${median(ratios[k]).toFixed(3)}x`,
    );
  row("p50, concurrency 1", "p50", "us", 0);
  row("p99, concurrency 1", "p99", "us", 0);
  row(`throughput, conc. ${MANY}`, "rps", "/s", 0);
  console.log("");
  console.log(
    `client-side work per call, in process: ${clientWork.toFixed(2)} us ` +
      `(building the request for the bare stub: ${stubWork.toFixed(2)} us)`,
  );
} finally {
  pdp.close();
  stub.close();
  await sidecar.stop();
}
