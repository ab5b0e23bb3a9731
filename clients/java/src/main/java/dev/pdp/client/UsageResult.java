package dev.pdp.client;

/**
 * {@code duplicate} is true when the request id was already recorded (nothing
 * was added); {@code dailySpendUsd} is the agent's spend today (UTC).
 */
public record UsageResult(boolean duplicate, double dailySpendUsd) {}
