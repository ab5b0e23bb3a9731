/** How a client reaches its sidecar: defaults and checked settings. */
import type { ChannelOptions } from "@grpc/grpc-js";

/** The sidecar runs next to the agent, so a decision normally takes well
 * under a millisecond; a second leaves room for a cold start without
 * letting a wedged sidecar hold the agent for long. */
export const DEFAULT_TIMEOUT_MS = 1000;

export const CHANNEL_OPTIONS: ChannelOptions = {
  // Ping only while calls are in flight, and rarely: servers refuse clients
  // that ping idle connections more often than every 5 minutes.
  "grpc.keepalive_time_ms": 60_000,
  "grpc.keepalive_timeout_ms": 20_000,
  "grpc.keepalive_permit_without_calls": 0,
  // Reconnecting to a local sidecar is cheap; a short backoff means a
  // restarted sidecar is used again within about a second, since calls fail
  // at once (no wait for ready) while the channel is backing off.
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
};

/** A timeout in milliseconds: `value`, or `fallback` when undefined. */
export function checkedTimeout(value: unknown, fallback: number, name = "timeoutMs"): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number of milliseconds above 0, got ${String(value)}`);
  }
  return value;
}
