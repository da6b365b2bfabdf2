package org.blockfuse.legacy;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.TransportSession;
import org.blockfuse.fuse.DeviceLoop;
import org.blockfuse.nativeio.Libc;

/** The legacy workers of one connection: one platform thread and one cloned fd each. */
final class LegacySession implements TransportSession {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(LegacySession.class);
    private final List<Thread> threads = new ArrayList<>();
    private final List<DeviceLoop> loops = new ArrayList<>();
    private final int[] fds;

    private LegacySession(int workers) {
        this.fds = new int[workers];
        java.util.Arrays.fill(fds, -1);
    }

    static LegacySession start(FuseChannel channel, int workers) throws IOException {
        if (workers < 1 || workers > 256) {
            throw new IOException("workers must be between 1 and 256, got " + workers);
        }
        LegacySession s = new LegacySession(workers);
        try {
            for (int i = 0; i < workers; i++) {
                s.fds[i] = LegacyTransport.cloneFd(channel.deviceFd());
                DeviceLoop loop = new DeviceLoop(channel, s.fds[i]);
                Thread t = new Thread(loop, "blockfuse-legacy-" + channel.name() + "-" + i);
                t.setDaemon(true);
                s.loops.add(loop);
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
        return fds.length + " workers";
    }

    @Override
    public boolean awaitStopped(long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        for (Thread t : threads) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                return false;
            }
            t.join(left);
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
        loops.forEach(DeviceLoop::stop);
        for (int i = 0; i < fds.length; i++) {
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
