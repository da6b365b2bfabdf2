package org.blockfuse.uring.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.NativeException;
import org.blockfuse.uring.internal.IoUringAbi.Sqe;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One kernel FUSE queue (one CPU): its own io_uring, its entries and its long-lived platform thread.
 * The thread creates everything, registers every entry, then loops: reap completions, serve the
 * requests that arrived, submit COMMIT_AND_FETCH for each answer. It is the only thread that ever
 * submits on this ring, so the kernel ties every entry to it (fact sheet §4.5).
 *
 * <p>Backend work: a lone request is served inline (lowest latency). When several arrive together
 * and recent inline service took longer than the offload threshold (the backend is slow, e.g.
 * O_DIRECT on disk), all but one go to the worker pool and the ring thread serves the last itself,
 * so a batch of N keeps up to N backend I/Os in flight. Fast backends (page cache, /dev/shm) stay
 * inline: a hand-off costs more than the I/O.
 *
 * <p>The thread ends once every entry has come back with an error (the connection ended), then
 * closes the ring and frees the memory: nothing the kernel may still write is freed earlier.
 */
final class UringQueue implements Runnable, CompletionQueue.Handler {
    private static final Logger LOG = LoggerFactory.getLogger(UringQueue.class);
    private static final int EFD_CLOEXEC = 02000000;
    private static final long REGISTER_RETRY_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final FuseChannel channel;
    private final UringConfig config;
    private final int qid;
    private final String threadName;
    private final Thread thread;
    final CompletableFuture<Void> prepared = new CompletableFuture<>();
    final CompletableFuture<Void> registered = new CompletableFuture<>();
    private final CountDownLatch go = new CountDownLatch(1);
    private volatile boolean abandon;
    private final AtomicLong served = new AtomicLong();
    private final AtomicLong offloaded = new AtomicLong();
    /** pin-cpus=auto: the moving mean of requests per pass, times 16; pinned while it is small. */
    private int batchMean16 = 16;
    private boolean pinned;
    /** Leave the CPU above a mean batch of 4 requests, come back below 1.5: hysteresis, no flapping. */
    private static final int UNPIN_BATCH16 = 4 << 4;
    private static final int REPIN_BATCH16 = 24;

    // owned by the ring thread
    private Ring ring;
    private QueueMemory memory;
    private QueueEntry[] entries;
    private WorkerPool workers;
    private int wakeFd = -1;
    /** Guards {@link #wakeFd} between the ring thread's close and another thread's wake-up write. */
    private final Object wakeLock = new Object();
    private ByteBuffer wakeOne;
    private int[] ready;
    private int readyCount;
    private int armed;
    private int withWorkers;
    private int dead;
    private boolean wakeArmed;
    private boolean registering;
    private int registerError;
    private int[] retry;
    private int retryCount;
    /** Exponentially weighted mean of inline service time. */
    private long serviceNanos;
    /** Set when attach failed elsewhere: this queue's entries were never used and must be given up. */
    private volatile boolean cancel;

    UringQueue(FuseChannel channel, UringConfig config, int qid) {
        this.channel = channel;
        this.config = config;
        this.qid = qid;
        this.threadName = "blockfuse-uring-" + channel.name() + "-q" + qid;
        this.thread = new Thread(this, threadName);
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    /** Lets the prepared thread register (or, with {@code abandon}, release everything and end). */
    void proceed(boolean abandon) {
        this.abandon = abandon;
        go.countDown();
    }

    /**
     * Gives up a queue whose registration succeeded while another queue's failed: the kernel never
     * switched to the rings, so closing this ring only cancels idle entries. Their memory stays mapped
     * (the cancellation is asynchronous), see {@link #release}.
     */
    void cancelUnready() {
        cancel = true;
        // wake the thread only while it is certainly serving (its eventfd is then open); a queue
        // still registering sees the flag when it reaches its loop, a failed one has ended already
        synchronized (wakeLock) { // never write a number release() has just closed (and the kernel may reuse)
            if (wakeFd >= 0 && registered.isDone() && !registered.isCompletedExceptionally() && thread.isAlive()) {
                Libc.write(wakeFd, Libc.address(wakeOne), 8);
            }
        }
    }

    Thread thread() {
        return thread;
    }

    long served() {
        return served.get();
    }

    long offloaded() {
        return offloaded.get();
    }

    /**
     * This queue's figures for the operator. Busy entries are read from the ring thread's own
     * counters without synchronisation: a monitoring figure may be a pass old, the hot path pays nothing.
     */
    QueueStatistics statistics() {
        QueueEntry[] e = entries;
        int depth = e == null ? config.depth() : e.length;
        int busy = e == null ? 0 : Math.max(0, depth - armed - dead);
        return new QueueStatistics("io_uring", qid, served.get(), busy, depth, offloaded.get());
    }

    @Override
    public void run() {
        org.slf4j.MDC.put("export", channel.name()); // every line of this thread names its export
        try {
            if (!prepare()) {
                return;
            }
            go.await();
            if (abandon) {
                release(true);
                return;
            }
            if (!register()) {
                return;
            }
            if (serve()) {
                drainAndRelease();
            } else {
                release(false);
            }
        } catch (InterruptedException e) {
            // only a bug interrupts a ring thread: its entries die with it, so stop the connection
            channel.halt("io_uring queue " + qid + " thread was interrupted");
        } catch (RuntimeException | Error e) {
            // cannot happen unless there is a bug. Halting ends the connection; the ring and its
            // memory are left as they are (never free what the kernel may still write).
            LOG.error("{}: io_uring queue {} failed", channel.name(), qid, e);
            channel.halt("io_uring queue " + qid + " failed: " + e);
        } finally {
            prepared.completeExceptionally(new IOException("queue " + qid + " ended"));
            registered.completeExceptionally(new IOException("queue " + qid + " ended"));
        }
    }

    private boolean prepare() {
        try {
            if (config.pinCpus()) {
                pin(true);
            }
            int depth = config.depth();
            memory = QueueMemory.map(depth, config.payloadSize());
            ring = Ring.create(depth + 1); // + the wake-up read
            wakeFd = Libc.eventfd(0, EFD_CLOEXEC);
            wakeOne = Libc.allocateAligned(8, 8).putLong(0, 1L);
            entries = new QueueEntry[depth];
            for (int i = 0; i < depth; i++) {
                entries[i] = new QueueEntry(i, memory.header(i), memory.payload(i));
            }
            ready = new int[depth];
            retry = new int[depth];
            workers = config.workers() > 0
                    ? new WorkerPool(channel, qid, depth, config.workers(), wakeFd, threadName) : null;
            prepared.complete(null);
            return true;
        } catch (IOException | RuntimeException e) {
            prepared.completeExceptionally(e);
            release(true);
            return false;
        }
    }

    /**
     * Submits REGISTER for every entry. A REGISTER that the kernel accepts stays pending (it completes
     * only when a request arrives); a refused one completes at once, so errors show up in the CQ
     * right after submission.
     */
    private boolean register() {
        registering = true;
        armWakeup();
        for (int i = 0; i < entries.length; i++) {
            submitRegister(i);
        }
        long deadline = System.nanoTime() + REGISTER_RETRY_NANOS;
        while (true) {
            int r = ring.submit(0);
            if (r < 0) {
                registerError = r;
            }
            ring.cq().reap(this);
            if (registerError != 0 || retryCount == 0) {
                break;
            }
            if (System.nanoTime() > deadline) {
                registerError = -Errno.EAGAIN;
                break;
            }
            // EAGAIN: INIT not processed yet; try again shortly
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                registerError = -Errno.EINTR;
                break;
            }
            int n = retryCount;
            retryCount = 0;
            for (int i = 0; i < n; i++) {
                submitRegister(retry[i]);
            }
        }
        registering = false;
        if (registerError != 0) {
            String why = "REGISTER on queue " + qid + " failed: " + Libc.strerror(-registerError)
                    + (registerError == -Errno.EOPNOTSUPP ? " (enable_uring is off)" : "")
                    + (registerError == -Errno.EINVAL ? " (payload buffer of " + config.payloadSize()
                            + " bytes too small, or no SQE128)" : "");
            registered.completeExceptionally(new NativeException(why, -registerError));
            // Entries already parked on this queue cannot be taken back while the connection lives
            // (only ring exit cancels them): close the ring but keep their memory mapped forever.
            release(armed == 0);
            return false;
        }
        registered.complete(null);
        return true;
    }

    /** Serves until every entry is back (true), or until {@link #cancelUnready()} (false). */
    private boolean serve() {
        while (dead < entries.length) {
            if (cancel) {
                return false;
            }
            collectFromWorkers();
            if (readyCount > 0) {
                dispatch();
            }
            if (!wakeArmed) {
                armWakeup();
            }
            if (dead == entries.length) {
                break;
            }
            // no spinning while workers hold requests: their completions wake this thread anyway, and
            // with a slow backend (NBD: every request with a worker) each wake-up would spin for nothing
            if (config.spinNanos() > 0 && withWorkers == 0 && spinForCompletions()) {
                continue;
            }
            int r = ring.submit(1);
            if (r < 0 && r != -Errno.EBUSY && r != -Errno.EAGAIN) {
                // cannot happen unless there is a bug: without io_uring_enter the entries are stuck
                channel.halt("io_uring_enter on queue " + qid + " failed: " + Libc.strerror(-r));
            }
            ring.cq().reap(this);
            if (ring.cq().overflow() != 0) {
                channel.halt("io_uring queue " + qid + " lost completions (CQ overflow)");
            }
        }
        return true;
    }

    /**
     * Publishes the commits and polls the CQ for a short while before sleeping in io_uring_enter.
     * Waking an idle vCPU costs tens of microseconds on this kind of machine; a thread that is still
     * running takes the kernel's task-work kick at once, so a request arriving soon is served
     * without a sleep/wake round trip. Between looks it yields: a client runnable on this CPU (the
     * one whose request comes next, under pin-cpus) runs at once instead of waiting for the poller
     * to be preempted; with nothing else runnable the yield returns at once.
     * @return true if completions arrived (and were reaped)
     */
    private boolean spinForCompletions() {
        int r = ring.submit(0);
        if (r < 0 && r != -Errno.EBUSY && r != -Errno.EAGAIN) {
            return false; // the blocking submit reports it
        }
        long until = System.nanoTime() + config.spinNanos();
        do {
            if (ring.cq().reap(this) > 0) {
                return true;
            }
            Thread.yield();
        } while (System.nanoTime() < until && !cancel);
        return false;
    }

    /**
     * Serves what arrived. Fast backend: everything inline. Slow backend: hand requests to workers,
     * keeping the last of a batch for this thread only while no worker is busy (a busy ring thread
     * delays the commits of finished workers).
     */
    private void dispatch() {
        int n = readyCount;
        readyCount = 0;
        if (config.pinning() == UringConfig.Pinning.AUTO) {
            adaptPinning(n);
        }
        int inlineFrom = 0;
        if (workers != null && serviceNanos > config.offloadNanos() && (n > 1 || withWorkers > 0)) {
            inlineFrom = withWorkers > 0 ? n : n - 1;
        }
        for (int i = 0; i < inlineFrom; i++) {
            withWorkers++;
            offloaded.incrementAndGet();
            workers.submit(entries[ready[i]], withWorkers);
        }
        for (int i = inlineFrom; i < n; i++) {
            QueueEntry e = entries[ready[i]];
            e.serve(channel, qid);
            sample(e);
            submitCommit(e);
        }
    }

    /**
     * pin-cpus=auto. A request is queued on the CPU its caller runs on; with this thread on the same
     * CPU the kernel's hand-over is a local switch, not a cross-CPU wake-up (measured here: QD 1 from
     * 51 to 123 MiB/s). But while the queue is deep (one job with many requests in flight) this thread
     * competes with its caller for that one CPU, and running on another one serves more (1 x 64: 489
     * free vs 419 pinned). So: pinned while the mean batch (requests per pass, a moving mean of
     * weight 1/16) stays small, free above {@link #UNPIN_BATCH16}; back below {@link #REPIN_BATCH16}.
     */
    private void adaptPinning(int batch) {
        batchMean16 += ((batch << 4) - batchMean16) >> 4;
        if (pinned && batchMean16 > UNPIN_BATCH16) {
            pin(false);
        } else if (!pinned && batchMean16 < REPIN_BATCH16) {
            pin(true);
        }
    }

    private void pin(boolean on) {
        int r = on ? Libc.pinToCpu(qid) : Libc.unpin();
        if (r < 0) {
            LOG.warn("{}: cannot {} queue {}'s thread: {}", channel.name(), on ? "pin" : "unpin", qid, Libc.strerror(-r));
        }
        pinned = on;
    }

    /** Folds one service time into the moving mean (weight 1/8) that decides inline vs offload. */
    private void sample(QueueEntry e) {
        serviceNanos += (e.serviceNanos - serviceNanos) >> 3;
    }

    private void collectFromWorkers() {
        if (workers == null) {
            return;
        }
        // clear on every pass, even with no entry out: a worker only writes the eventfd when it
        // moves the count from 0, so a count left over from an earlier pass would swallow the wake-up
        workers.clearSignal();
        if (withWorkers == 0) {
            return;
        }
        QueueEntry e;
        while ((e = workers.poll()) != null) {
            withWorkers--;
            sample(e);
            submitCommit(e);
        }
    }

    @Override
    public void completion(long userData, int res, int flags) {
        switch (UserData.kind(userData)) {
            case UserData.FUSE_ENTRY:
                entryCompleted(UserData.index(userData), res);
                break;
            case UserData.WAKEUP:
                wakeArmed = false;
                break;
            default:
                channel.halt("io_uring queue " + qid + ": completion with unknown user_data " + userData);
        }
    }

    private void entryCompleted(int index, int res) {
        armed--;
        if (res == 0) {
            served.incrementAndGet();
            entries[index].arrivedNanos = System.nanoTime();
            ready[readyCount++] = index;
            return;
        }
        if (registering && res == -Errno.EAGAIN) {
            retry[retryCount++] = index;
            return;
        }
        dead++;
        if (registering) {
            registerError = res;
        } else if (res == -Errno.ENOTCONN || res == -Errno.ECONNABORTED || res == -Errno.ENODEV) {
            channel.ended(Errno.name(-res) + " on io_uring queue " + qid);
        } else if (!channel.halted()) {
            // ENOTCONN/ECONNABORTED: the connection ended (unmount, abort). Anything else loses the
            // entry and cannot happen unless there is a bug (e.g. ENOENT: unknown commit_id).
            channel.halt("io_uring queue " + qid + " entry " + index + ": FUSE command failed with "
                    + Libc.strerror(-res));
        }
    }

    private void submitRegister(int index) {
        ByteBuffer sqes = ring.sq().sqes();
        int at = ring.sq().claim();
        sqes.put(at + Sqe.OPCODE, (byte) IoUringAbi.OP_URING_CMD);
        sqes.putInt(at + Sqe.FD, channel.deviceFd());
        sqes.putInt(at + Sqe.CMD_OP, FuseUringAbi.CMD_REGISTER);
        sqes.putLong(at + Sqe.ADDR, memory.iovecs(index));
        sqes.putInt(at + Sqe.LEN, FuseUringAbi.IOV_SEGS);
        sqes.putLong(at + Sqe.USER_DATA, UserData.of(UserData.FUSE_ENTRY, index));
        sqes.putShort(at + Sqe.CMD + FuseUringAbi.CmdReq.QID, (short) qid);
        armed++;
    }

    private void submitCommit(QueueEntry e) {
        ByteBuffer sqes = ring.sq().sqes();
        int at = ring.sq().claim();
        sqes.put(at + Sqe.OPCODE, (byte) IoUringAbi.OP_URING_CMD);
        sqes.putInt(at + Sqe.FD, channel.deviceFd());
        sqes.putInt(at + Sqe.CMD_OP, FuseUringAbi.CMD_COMMIT_AND_FETCH);
        sqes.putLong(at + Sqe.USER_DATA, UserData.of(UserData.FUSE_ENTRY, e.index));
        sqes.putLong(at + Sqe.CMD + FuseUringAbi.CmdReq.COMMIT_ID, e.commitId());
        sqes.putShort(at + Sqe.CMD + FuseUringAbi.CmdReq.QID, (short) qid);
        armed++;
    }

    private void armWakeup() {
        ByteBuffer sqes = ring.sq().sqes();
        int at = ring.sq().claim();
        sqes.put(at + Sqe.OPCODE, (byte) IoUringAbi.OP_READ);
        sqes.putInt(at + Sqe.FD, wakeFd);
        sqes.putLong(at + Sqe.ADDR, memory.wakeCounter());
        sqes.putInt(at + Sqe.LEN, 8);
        sqes.putLong(at + Sqe.USER_DATA, UserData.of(UserData.WAKEUP, 0));
        wakeArmed = true;
    }

    /** Every entry is back: stop the workers, complete the wake-up read, then free everything. */
    private void drainAndRelease() throws InterruptedException {
        if (workers != null && !workers.shutdown()) {
            release(false, false);
            return;
        }
        if (wakeArmed) {
            Libc.write(wakeFd, Libc.address(wakeOne), 8);
            while (wakeArmed) {
                int r = ring.submit(1);
                if (r < 0 && r != -Errno.EBUSY && r != -Errno.EAGAIN) {
                    break;
                }
                ring.cq().reap(this);
            }
        }
        release(!wakeArmed);
    }

    /**
     * Closes the ring and the eventfd; unmaps the entry memory only if {@code free} (no command that
     * points into it can still be completed by the kernel).
     */
    private void release(boolean free) {
        boolean workersStopped = true;
        if (workers != null && dead < entries.length) {
            try {
                workersStopped = workers.shutdown();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                workersStopped = false;
            }
        }
        release(free && workersStopped, workersStopped);
    }

    /**
     * @param free        unmap the entry memory
     * @param closeWakeFd close the eventfd; false while a stuck worker may still write it (a reused
     *                    number would carry its wake-up into some other file)
     */
    private void release(boolean free, boolean closeWakeFd) {
        if (ring != null) {
            ring.close();
            ring = null;
        }
        synchronized (wakeLock) {
            if (wakeFd >= 0 && closeWakeFd) {
                Libc.close(wakeFd);
            } else if (wakeFd >= 0) {
                LOG.warn("{}: io_uring queue {} leaks its eventfd {}: a worker is still running", channel.name(), qid, wakeFd);
            }
            wakeFd = -1;
        }
        if (memory != null) {
            if (free) {
                memory.unmap();
            } else {
                LOG.warn("{}: io_uring queue {} keeps {} KiB mapped: the kernel still holds entries of it",
                        channel.name(), qid, memory.bytes() >> 10);
            }
        }
    }

    /** A racy snapshot of the ring thread's counters, for diagnostics only. */
    String state() {
        Ring r = ring;
        return "q" + qid + "{armed=" + armed + ", withWorkers=" + withWorkers + ", dead=" + dead + ", ready="
                + readyCount + ", wakeArmed=" + wakeArmed + ", serviceNanos=" + serviceNanos + ", served=" + served
                + ", offloaded=" + offloaded + (workers == null ? "" : ", " + workers.state()) + "}"
                + fdinfo(wakeFd) + fdinfo(r == null ? -1 : r.fd());
    }

    private static String fdinfo(int fd) {
        try {
            return fd < 0 ? "" : "\n  fd " + fd + ": "
                    + Files.readString(Path.of("/proc/self/fdinfo/" + fd)).replace("\n", " | ");
        } catch (IOException e) {
            return "";
        }
    }
}
