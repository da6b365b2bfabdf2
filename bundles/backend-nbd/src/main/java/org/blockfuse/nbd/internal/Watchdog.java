package org.blockfuse.nbd.internal;

import java.nio.channels.SocketChannel;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Closes sockets whose deadline passed (a blocked connect or handshake read then fails at once),
 * and runs a periodic check, on one thread ticking every 100 ms: from the first connect of an
 * export to its close.
 */
final class Watchdog {
    private static final long TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private final Set<Guard> guards = ConcurrentHashMap.newKeySet();
    private volatile boolean stopped;
    private volatile Runnable tick = () -> { };
    private Thread thread;
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

    /** A watchdog ticking on its own daemon thread, until {@link #stop()}. */
    static Watchdog start(String threadName) {
        Watchdog w = new Watchdog();
        w.thread = new Thread(w::run, threadName);
        w.thread.setDaemon(true);
        w.thread.start();
        return w;
    }

    /** What to run on every tick from now on (besides closing due sockets). */
    void every(Runnable tick) {
        this.tick = tick;
    }

    private void run() {
        while (!stopped) {
            long now = System.nanoTime();
            for (Guard g : guards) {
                g.fireIfDue(now);
            }
            tick.run();
            try {
                TimeUnit.NANOSECONDS.sleep(TICK_NANOS);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /** Ends the thread (bounded wait); guards still set are not fired. */
    void stop() {
        stopped = true;
        thread.interrupt();
        try {
            thread.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
