package org.blockfuse.api;

/**
 * A distribution of request latencies (nanoseconds, about 1 % precision), from arrival at
 * blockfuse to the reply being ready. Immutable; {@link #since} gives the part recorded after
 * an earlier snapshot of the same distribution (for per-interval figures).
 */
public interface LatencyDistribution {

    /** Requests recorded. */
    long count();

    /** The latency at or below which {@code percentile} per cent of the requests finished; 0 if none. */
    long valueAtPercentile(double percentile);

    /** The longest latency recorded; 0 if none. */
    long max();

    /** The requests recorded after {@code earlier} (a snapshot of this distribution taken before). */
    LatencyDistribution since(LatencyDistribution earlier);
}
