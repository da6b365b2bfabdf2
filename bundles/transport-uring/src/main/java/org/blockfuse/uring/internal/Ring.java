package org.blockfuse.uring.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.IoUringSys;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.NativeException;
import org.blockfuse.uring.internal.IoUringAbi.CqOffsets;
import org.blockfuse.uring.internal.IoUringAbi.Params;
import org.blockfuse.uring.internal.IoUringAbi.SqOffsets;

/**
 * One io_uring with 128-byte SQEs: its fd, its two mappings (rings, SQE array) and its two queues.
 * Not thread-safe: one thread submits and reaps. {@link #close()} unmaps and closes; the caller must
 * make sure nothing the kernel may still complete refers to memory it is about to free.
 */
public final class Ring implements AutoCloseable {
    private final int fd;
    private final long ringAddress;
    private final long ringLength;
    private final long sqesAddress;
    private final long sqesLength;
    private final SubmissionQueue sq;
    private final CompletionQueue cq;
    private boolean closed;

    private Ring(int fd, long ringAddress, long ringLength, long sqesAddress, long sqesLength, SubmissionQueue sq,
            CompletionQueue cq) {
        this.fd = fd;
        this.ringAddress = ringAddress;
        this.ringLength = ringLength;
        this.sqesAddress = sqesAddress;
        this.sqesLength = sqesLength;
        this.sq = sq;
        this.cq = cq;
    }

    /**
     * Sets up a ring with at least {@code entries} SQEs (the kernel rounds up to a power of two) and
     * a CQ twice as large, with SQE128 (mandatory for FUSE commands) and SUBMIT_ALL.
     */
    public static Ring create(int entries) throws IOException {
        ByteBuffer params = ByteBuffer.allocateDirect(Params.SIZE).order(ByteOrder.nativeOrder());
        // measured here: SINGLE_ISSUER|DEFER_TASKRUN and COOP_TASKRUN|TASKRUN_FLAG change nothing at QD 1
        params.putInt(Params.FLAGS, IoUringAbi.SETUP_SQE128 | IoUringAbi.SETUP_SUBMIT_ALL);
        int fd = IoUringSys.setup(entries, Libc.address(params));
        if (fd < 0) {
            throw new NativeException("io_uring_setup(" + entries + ", SQE128)", -fd);
        }
        long ringAddr = 0;
        long ringLen = 0;
        long sqesAddr = 0;
        long sqesLen = 0;
        boolean ok = false;
        try {
            int sqEntries = params.getInt(Params.SQ_ENTRIES);
            int cqEntries = params.getInt(Params.CQ_ENTRIES);
            if ((params.getInt(Params.FEATURES) & IoUringAbi.FEAT_SINGLE_MMAP) == 0) {
                throw new IOException("io_uring without IORING_FEAT_SINGLE_MMAP (kernel older than 5.4) is not supported");
            }
            long sqLen = params.getInt(Params.SQ_OFF + SqOffsets.ARRAY) + 4L * sqEntries;
            long cqLen = params.getInt(Params.CQ_OFF + CqOffsets.CQES) + (long) IoUringAbi.Cqe.SIZE * cqEntries;
            ringLen = Math.max(sqLen, cqLen);
            int prot = Libc.PROT_READ | Libc.PROT_WRITE;
            int flags = Libc.MAP_SHARED | Libc.MAP_POPULATE;
            ringAddr = Libc.mmap(ringLen, prot, flags, fd, IoUringAbi.OFF_SQ_RING);
            sqesLen = (long) IoUringAbi.Sqe.SIZE * sqEntries;
            sqesAddr = Libc.mmap(sqesLen, prot, flags, fd, IoUringAbi.OFF_SQES);
            ByteBuffer ring = Libc.wrap(ringAddr, (int) ringLen);
            ByteBuffer sqes = Libc.wrap(sqesAddr, (int) sqesLen);
            Ring r = new Ring(fd, ringAddr, ringLen, sqesAddr, sqesLen, new SubmissionQueue(ring, sqes, params),
                    new CompletionQueue(ring, params));
            ok = true;
            return r;
        } finally {
            if (!ok) {
                if (sqesAddr != 0) {
                    Libc.munmap(sqesAddr, sqesLen);
                }
                if (ringAddr != 0) {
                    Libc.munmap(ringAddr, ringLen);
                }
                Libc.close(fd);
            }
        }
    }

    public int fd() {
        return fd;
    }

    public SubmissionQueue sq() {
        return sq;
    }

    public CompletionQueue cq() {
        return cq;
    }

    /**
     * Publishes the claimed SQEs, submits them and, if {@code waitFor} &gt; 0, waits until at least that
     * many CQEs are available. EINTR is retried.
     * @return 0 or -errno of io_uring_enter (EBUSY/EAGAIN: reap first, then retry)
     */
    public int submit(int waitFor) {
        while (true) {
            int pending = sq.publish();
            if (pending == 0 && waitFor == 0) {
                return 0;
            }
            int r = IoUringSys.enter(fd, pending, waitFor, waitFor > 0 ? IoUringAbi.ENTER_GETEVENTS : 0);
            if (r == -Errno.EINTR) {
                continue;
            }
            return Math.min(r, 0);
        }
    }

    /** Bytes this ring maps (rings and SQE array), for memory accounting. */
    public long mappedBytes() {
        return ringLength + sqesLength;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        Libc.munmap(sqesAddress, sqesLength);
        Libc.munmap(ringAddress, ringLength);
        Libc.close(fd);
    }
}
