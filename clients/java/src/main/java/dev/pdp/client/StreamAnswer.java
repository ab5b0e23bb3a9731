package dev.pdp.client;

/**
 * One answer of an {@link EnforceStream}: the id of the request it answers,
 * and its {@code result} or {@code error} (a block, a pause, or a request the
 * sidecar refused without ending the stream); exactly one is non-null.
 */
public record StreamAnswer(String id, EnforceResult result, PdpException error) {}
