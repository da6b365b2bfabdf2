package org.blockfuse.api;

/** A transport as the operator sees it. */
public record TransportInfo(String name, int rank, boolean available, String reason) {
}
