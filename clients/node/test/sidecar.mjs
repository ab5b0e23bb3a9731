// Real sidecars for the tests: `pdp serve` from the repository's venv
// ($PDP_BIN, default <repo>/.venv/bin/pdp), on an ephemeral port or a Unix
// socket, with its own state file; and servers that never answer.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const TESTDATA = join(REPO, "clients", "testdata");
export const PDP_BIN = process.env.PDP_BIN || join(REPO, ".venv", "bin", "pdp");
const STARTUP_MS = 30_000;

/** A fresh temporary directory, removed by `cleanup()`. Short, so a Unix
 * socket path inside it stays under the ~100-byte limit. */
export function tempDir(prefix = "pdp-") {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Starts `pdp serve` and resolves once its log says where it listens:
 * `{ target, stop(), log }`. Rejects (never skips) when it does not start. */
export async function startSidecar({ snapshot = join(TESTDATA, "snapshot.yaml"), listen = "127.0.0.1:0", args = [] } = {}) {
  const dir = tempDir();
  const serve = ["serve", "--snapshot", snapshot, "--state", join(dir.path, "state.db"), "--listen", listen, ...args];
  const child = spawn(PDP_BIN, serve, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  const log = [];
  const target = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => fail(`did not report "listening on" within ${STARTUP_MS} ms`), STARTUP_MS);
    function fail(why) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${PDP_BIN} serve ${why}:\n${log.join("")}`));
    }
    child.on("error", (error) => fail(`could not be started (${error.message}); set PDP_BIN`));
    child.on("exit", (code) => fail(`exited with ${code}`));
    let found = false;
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log.push(chunk);
      if (found) return; // keep draining the log so the child never blocks on it
      const match = /listening on (\S+)/.exec(log.join(""));
      if (match) {
        found = true;
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolvePromise(match[1]);
      }
    });
  });
  return {
    target,
    log,
    dir: dir.path,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
      dir.cleanup();
    },
  };
}

/** A server that accepts connections and never sends a byte: a sidecar
 * that hangs. `target` is "127.0.0.1:PORT" or "unix:PATH". */
export async function startSilentServer(path) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((r) => (path ? server.listen(path, r) : server.listen(0, "127.0.0.1", r)));
  const address = server.address();
  return {
    target: path ? `unix:${path}` : `127.0.0.1:${address.port}`,
    get connections() {
      return sockets.size;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A local port nothing listens on: connections are refused at once. */
export async function refusedTarget() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return `127.0.0.1:${port}`;
}
