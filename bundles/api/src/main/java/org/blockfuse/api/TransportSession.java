package org.blockfuse.api;

/** One transport serving one connection. */
public interface TransportSession extends AutoCloseable {

    String transport();

    /** Human-readable layout, e.g. "2 workers" or "2 queues x 64". */
    String describe();

    /** The session's queues now, for statistics. */
    default java.util.List<QueueStatistics> queues() {
        return java.util.List.of();
    }

    /**
     * Waits until every thread has ended (they end when the connection goes away).
     * @return true if they all ended in time
     */
    boolean awaitStopped(long millis) throws InterruptedException;

    /** Ends the threads and releases every fd and buffer; the connection must already be gone. */
    @Override
    void close();
}
