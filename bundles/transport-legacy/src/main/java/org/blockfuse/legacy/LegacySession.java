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

    @Override
    public void close() {
        loops.forEach(DeviceLoop::stop);
        for (int i = 0; i < fds.length; i++) {
            Libc.close(fds[i]);
            fds[i] = -1;
        }
    }
}
