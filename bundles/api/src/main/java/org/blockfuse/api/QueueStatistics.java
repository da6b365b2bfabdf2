package org.blockfuse.api;

/**
 * One transport queue of one connection: an io_uring ring with its entries, or legacy's single
 * /dev/fuse queue with its workers.
 * @param served   requests this queue has taken from the kernel
 * @param busy     entries (or workers) holding a request now
 * @param depth    entries (or workers) in all
 * @param offloads requests handed to the queue's worker pool instead of being served inline
 */
public record QueueStatistics(String transport, int queue, long served, int busy, int depth, long offloads) {
}
