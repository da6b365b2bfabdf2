package org.blockfuse.uring.internal;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.api.TransportSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The rings of one connection: one {@link UringQueue} per possible CPU. What still travels over
 * /dev/fuse after the switch (requests queued before it, INTERRUPT, FORGET) is read by the
 * connection's own reader. The session ends by itself when the connection ends: every entry
 * completes with ENOTCONN and each thread frees what it owns.
 */
public final class UringSession implements TransportSession {
    private static final Logger LOG = LoggerFactory.getLogger(UringSession.class);
    static final long ATTACH_TIMEOUT_MS = 10_000;
    static final long CLOSE_GRACE_MS = 2_000;
    static final long CLOSE_DRAIN_MS = 10_000;

    private final FuseChannel channel;
    private final UringConfig config;
    private final List<UringQueue> queues;
    private boolean closed;

    private UringSession(FuseChannel channel, UringConfig config, List<UringQueue> queues) {
        this.channel = channel;
        this.config = config;
        this.queues = queues;
    }

    /**
     * Prepares every queue (ring, memory, thread), then registers them all. Until the last queue has
     * an entry the kernel keeps using /dev/fuse, so a failure before that leaves the connection
     * serving as before (whoever served it keeps doing so).
     */
    public static UringSession attach(FuseChannel channel, UringConfig config) throws IOException {
        List<UringQueue> queues = new ArrayList<>();
        for (int q = 0; q < config.queues(); q++) {
            UringQueue queue = new UringQueue(channel, config, q);
            queues.add(queue);
            queue.start();
        }
        IOException failure = awaitAll(queues, true);
        for (UringQueue q : queues) {
            q.proceed(failure != null);
        }
        if (failure == null) {
            failure = awaitAll(queues, false);
            if (failure != null) {
                for (UringQueue q : queues) {
                    q.cancelUnready();
                }
            }
        }
        if (failure != null) {
            for (UringQueue q : queues) {
                join(q.thread(), ATTACH_TIMEOUT_MS);
            }
            throw failure;
        }
        UringSession s = new UringSession(channel, config, queues);
        LOG.info("{}: FUSE over io_uring: {}", channel.name(), s.describe());
        return s;
    }

    private static IOException awaitAll(List<UringQueue> queues, boolean prepared) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ATTACH_TIMEOUT_MS);
        for (UringQueue q : queues) {
            try {
                (prepared ? q.prepared : q.registered).get(Math.max(1, deadline - System.nanoTime()),
                        TimeUnit.NANOSECONDS);
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                return c instanceof IOException ? (IOException) c : new IOException(c.toString(), c);
            } catch (TimeoutException e) {
                return new IOException("io_uring queues not " + (prepared ? "set up" : "registered") + " within "
                        + ATTACH_TIMEOUT_MS + " ms");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return new IOException("interrupted while attaching io_uring queues");
            }
        }
        return null;
    }

    @Override
    public String transport() {
        return "io_uring";
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "%d queues x %d entries, %.1f MiB ring buffers, up to %d workers/queue%s",
                config.queues(), config.depth(), config.memoryBytes() / 1048576.0, config.workers(),
                config.pinning() == UringConfig.Pinning.ALWAYS ? ", pinned"
                        : config.pinning() == UringConfig.Pinning.AUTO ? ", pinned while shallow" : "");
    }

    /** Requests that came in over the rings so far. */
    public long requestsServed() {
        long n = 0;
        for (UringQueue q : queues) {
            n += q.served();
        }
        return n;
    }

    /** Requests served by a worker rather than inline by a ring thread. */
    public long requestsOffloaded() {
        long n = 0;
        for (UringQueue q : queues) {
            n += q.offloaded();
        }
        return n;
    }

    @Override
    public List<QueueStatistics> queues() {
        List<QueueStatistics> out = new ArrayList<>(queues.size());
        for (UringQueue q : queues) {
            out.add(q.statistics());
        }
        return out;
    }

    /** Per-queue counters, for diagnostics. */
    public String state() {
        StringBuilder sb = new StringBuilder();
        for (UringQueue q : queues) {
            sb.append(q.state()).append(' ');
        }
        return sb.toString().trim();
    }

    public UringConfig config() {
        return config;
    }

    @Override
    public boolean awaitStopped(long millis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        for (UringQueue q : queues) {
            q.thread().join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        }
        return queues.stream().noneMatch(q -> q.thread().isAlive());
    }

    /**
     * Waits for the threads, which end when the connection has ended. If the connection is still
     * alive after a grace period the rings cannot be taken away from it without hanging its clients
     * (the kernel never switches back to /dev/fuse), so the connection is halted first.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (!awaitStopped(CLOSE_GRACE_MS)) {
                channel.halt("io_uring transport closed while the connection was still live");
                if (!awaitStopped(CLOSE_DRAIN_MS)) {
                    LOG.error("{}: io_uring threads did not end within {} ms after the connection was halted; "
                            + "their memory stays mapped", channel.name(), CLOSE_GRACE_MS + CLOSE_DRAIN_MS);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void join(Thread t, long millis) {
        try {
            t.join(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
