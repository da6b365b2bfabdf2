package org.blockfuse.management;

/** One installed transport, {@code org.blockfuse:type=transport,name=NAME}. */
public interface TransportMXBean {
    String getName();

    int getRank();

    boolean isAvailable();

    /** Why it is unavailable; empty when available. */
    String getReason();

    /** Active exports this transport serves now. */
    int getExports();

    /** Requests taken from the kernel by this transport's queues, over the exports it serves now. */
    long getRequestsServed();

    /** Queue entries (or workers) holding a request now, over those exports. */
    int getBusy();

    /** Requests handed to worker pools rather than served inline, over those exports. */
    long getOffloads();
}
