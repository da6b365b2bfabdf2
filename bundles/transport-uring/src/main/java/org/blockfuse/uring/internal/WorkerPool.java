package org.blockfuse.uring.internal;

import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.nativeio.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A queue's helpers for slow requests. The ring thread hands an entry over; a worker serves it
 * (the backend I/O happens here) and hands it back through {@link #finished} plus an eventfd
 * write that completes the ring thread's pending read on the same ring. Workers never touch the
 * ring: only the ring thread submits on it. Threads start lazily, up to {@code max}, and live until
 * {@link #shutdown()}; hand-off queues are arrays, so nothing is allocated per request.
 */
final class WorkerPool {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerPool.class);
    static final long JOIN_MILLIS = 10_000;
    private final FuseChannel channel;
    private final int qid;
    private final int max;
    private final int wakeFd;
    private final String threadPrefix;
    private final ArrayBlockingQueue<QueueEntry> todo;
    private final ArrayBlockingQueue<QueueEntry> finished;
    /** Hand-backs not yet seen by the ring thread; the eventfd is written only on 0 → 1. */
    private final AtomicInteger unseen = new AtomicInteger();
    private final List<Thread> threads = new ArrayList<>();
    private volatile boolean stopping;

    WorkerPool(FuseChannel channel, int qid, int depth, int max, int wakeFd, String threadPrefix) {
        this.channel = channel;
        this.qid = qid;
        this.max = max;
        this.wakeFd = wakeFd;
        this.threadPrefix = threadPrefix;
        this.todo = new ArrayBlockingQueue<>(depth);
        this.finished = new ArrayBlockingQueue<>(depth);
    }

    int max() {
        return max;
    }

    int started() {
        return threads.size();
    }

    /** Ring thread: hands {@code e} to a worker; {@code busy} is how many entries workers hold now. */
    void submit(QueueEntry e, int busy) {
        if (busy > threads.size() && threads.size() < max) {
            Thread t = new Thread(this::work, threadPrefix + "-w" + threads.size());
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
        todo.add(e); // cannot be full: at most depth entries exist
    }

    /** Ring thread: the next entry a worker is done with, or null. Call {@link #clearSignal()} before draining. */
    QueueEntry poll() {
        return finished.poll();
    }

    /** Ring thread: forget the pending signal; entries handed back after this will signal again. */
    void clearSignal() {
        unseen.set(0);
    }

    String state() {
        return "workers=" + threads.size() + ", todo=" + todo.size() + ", finished=" + finished.size() + ", unseen="
                + unseen.get();
    }

    private void work() {
        org.slf4j.MDC.put("export", channel.name());
        // a thread inherits its creator's affinity: a worker started by a pinned ring thread would
        // otherwise share that one CPU with it, which is exactly what offloading is meant to avoid
        org.blockfuse.nativeio.Libc.unpin();
        // the 8-byte value 1 that eventfd writes add; its address goes to the kernel, so the buffer
        // must stay reachable for the whole loop (a collected direct buffer would hand the kernel
        // freed memory: a 0 added to the counter wakes nobody)
        ByteBuffer one = Libc.allocateAligned(8, 8);
        one.putLong(0, 1L);
        long oneAddress = Libc.address(one);
        try {
            workUntilStopped(oneAddress);
        } catch (Throwable t) { // last resort: a dead worker would strand its entry and hang the queue
            channel.halt(Thread.currentThread().getName() + " (io_uring queue " + qid + " worker) died: " + t);
        } finally {
            Reference.reachabilityFence(one);
        }
    }

    private void workUntilStopped(long oneAddress) {
        {
            while (!stopping) {
                QueueEntry e;
                try {
                    e = todo.take();
                } catch (InterruptedException ie) {
                    return;
                }
                e.serve(channel, qid);
                finished.add(e);
                if (unseen.getAndIncrement() == 0) {
                    long w = Libc.write(wakeFd, oneAddress, 8);
                    if (w != 8) {
                        // cannot happen unless there is a bug: the ring thread would sleep on a finished entry
                        channel.halt("io_uring queue " + qid + ": waking the ring thread failed (" + w + ")");
                    }
                }
            }
        }
    }

    /**
     * Ring thread, once no entry is with a worker: ends and joins every worker, each for at most
     * {@link #JOIN_MILLIS}.
     * @return false if a worker is still running (stuck in the backend): the caller must then leak
     *     the eventfd and entry memory that worker may still touch rather than free them
     */
    boolean shutdown() throws InterruptedException {
        stopping = true;
        boolean stopped = true;
        for (Thread t : threads) {
            t.interrupt();
        }
        for (Thread t : threads) {
            t.join(JOIN_MILLIS);
            if (t.isAlive()) {
                // a worker stuck in the backend: leave it (it holds no fd we close) and say so
                LOG.error("{}: {} did not stop within {} ms", channel.name(), t.getName(), JOIN_MILLIS);
                stopped = false;
            }
        }
        return stopped;
    }
}
