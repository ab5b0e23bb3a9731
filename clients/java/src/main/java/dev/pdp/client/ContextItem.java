package dev.pdp.client;

/**
 * Content an agent pulled in, scanned for indirect prompt injection.
 * {@code kind} is document, tool_result, email, web_page or code;
 * {@code source} is where it came from (a URL, a file or tool name).
 */
public record ContextItem(String kind, String source, String content) {}
