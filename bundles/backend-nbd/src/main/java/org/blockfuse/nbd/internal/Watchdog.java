package org.blockfuse.nbd.internal;

import java.nio.channels.SocketChannel;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Closes sockets whose deadline passed (a blocked connect or handshake read then fails at once),
 * and runs a periodic check, on one thread ticking every 100 ms.
 */
final class Watchdog {
    private static final long TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private final Set<Guard> guards = ConcurrentHashMap.newKeySet();
    private volatile boolean stopped;
    /** Set by {@link #closeAll()}: every guarded socket, also one guarded later, is closed at once. */
    private volatile boolean closing;

    /** A socket to close at a deadline unless cancelled first. */
    final class Guard {
        private final SocketChannel channel;
        private final long deadline;
        private boolean fired;

        private Guard(SocketChannel channel, long deadline) {
            this.channel = channel;
            this.deadline = deadline;
        }

        /** Stops the guard; false when it already fired (the socket was closed for the deadline). */
        synchronized boolean cancel() {
            guards.remove(this);
            return !fired;
        }

        private synchronized void fireIfDue(long now) {
            if (!fired && (closing || now - deadline >= 0)) {
                fired = true;
                guards.remove(this);
                NbdConnection.closeQuietly(channel);
            }
        }
    }

    Guard closeAt(SocketChannel channel, long deadlineNanos) {
        Guard g = new Guard(channel, deadlineNanos);
        guards.add(g);
        if (closing) {
            g.fireIfDue(System.nanoTime());
        }
        return g;
    }

    /** Closes every socket still connecting or in its handshake (the export is closing): none waits for its deadline. */
    void closeAll() {
        closing = true;
        long now = System.nanoTime();
        for (Guard g : guards) {
            g.fireIfDue(now);
        }
    }

    /** Ticks until {@link #stop()} or until {@code check} returns true. */
    void run(BooleanSupplier check) {
        while (!stopped) {
            long now = System.nanoTime();
            for (Guard g : guards) {
                g.fireIfDue(now);
            }
            if (check.getAsBoolean()) {
                return;
            }
            try {
                TimeUnit.NANOSECONDS.sleep(TICK_NANOS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    void stop() {
        stopped = true;
    }
}
