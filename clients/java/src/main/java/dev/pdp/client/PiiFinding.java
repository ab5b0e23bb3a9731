package dev.pdp.client;

/**
 * One span of PII: {@code field} is "input" or "output"; {@code start} and
 * {@code end} are offsets in Unicode code points (not UTF-16 chars) into the
 * original text, end exclusive.
 */
public record PiiFinding(String field, String piiType, int start, int end) {}
