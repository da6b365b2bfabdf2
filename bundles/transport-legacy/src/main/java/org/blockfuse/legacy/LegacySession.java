package org.blockfuse.legacy;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.api.TransportSession;
import org.blockfuse.nativeio.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The legacy workers of one connection beyond the connection's own reader: one platform thread
 * and one cloned fd each (less contention on the kernel's per-fd processing list).
 */
final class LegacySession implements TransportSession {
    private static final Logger LOG = LoggerFactory.getLogger(LegacySession.class);
    private final List<Thread> threads = new ArrayList<>();
    private final int workers;
    private final int[] fds;
    private final FuseChannel channel;

    private LegacySession(FuseChannel channel, int workers) {
        this.channel = channel;
        this.workers = workers;
        this.fds = new int[workers - 1]; // the connection's own reader is the first worker
        Arrays.fill(fds, -1);
    }

    static LegacySession start(FuseChannel channel, int workers) throws IOException {
        if (workers < 1 || workers > 256) {
            throw new IOException("workers must be between 1 and 256, got " + workers);
        }
        LegacySession s = new LegacySession(channel, workers);
        try {
            for (int i = 0; i < s.fds.length; i++) {
                int fd = LegacyTransport.cloneFd(channel.deviceFd());
                s.fds[i] = fd;
                Thread t = new Thread(() -> channel.serveDevice(fd), "blockfuse-legacy-" + channel.name() + "-" + (i + 1));
                t.setDaemon(true);
                s.threads.add(t);
            }
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
        s.threads.forEach(Thread::start);
        return s;
    }

    @Override
    public String transport() {
        return LegacyTransport.NAME;
    }

    @Override
    public String describe() {
        return workers + (workers == 1 ? " worker" : " workers");
    }

    /**
     * Legacy has one queue, the kernel's pending list on /dev/fuse, which every worker reads; its busy
     * figure is the kernel's count of requests sent and not yet answered, at most one per worker.
     */
    @Override
    public List<QueueStatistics> queues() {
        int waiting = channel.waiting();
        return List.of(new QueueStatistics(LegacyTransport.NAME, 0, channel.requestsServed(),
                Math.max(0, Math.min(waiting, workers)), workers, 0));
    }

    @Override
    public boolean awaitStopped(long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        for (Thread t : threads) {
            t.join(Math.max(1, deadline - System.currentTimeMillis()));
            if (t.isAlive()) {
                return false;
            }
        }
        return true;
    }

    /**
     * Closes the cloned fd of every worker that has ended (or never started). A worker still
     * running keeps its fd: it may be blocked in read() or about to write a reply, and a closed
     * number could be reused by another export's device before it does.
     */
    @Override
    public void close() {
        for (int i = 0; i < fds.length; i++) {
            if (fds[i] < 0) {
                continue;
            }
            boolean running = i < threads.size() && threads.get(i).isAlive();
            if (running) {
                LOG.error("{} is still running; leaking its /dev/fuse clone fd {}", threads.get(i).getName(), fds[i]);
            } else {
                Libc.close(fds[i]);
            }
            fds[i] = -1;
        }
    }
}
