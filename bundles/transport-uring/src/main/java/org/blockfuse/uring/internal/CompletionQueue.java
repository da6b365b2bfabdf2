package org.blockfuse.uring.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.blockfuse.uring.internal.IoUringAbi.Cqe;
import org.blockfuse.uring.internal.IoUringAbi.CqOffsets;

/** The completion side of one ring, read by exactly one thread. */
public final class CompletionQueue {
    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());

    /** Receives one completion; called on the ring's thread. */
    @FunctionalInterface
    public interface Handler {
        void completion(long userData, int res, int flags);
    }

    private final ByteBuffer ring;
    private final int headOffset;
    private final int tailOffset;
    private final int overflowOffset;
    private final int cqesOffset;
    private final int mask;
    private final int entries;

    CompletionQueue(ByteBuffer ring, ByteBuffer params) {
        this.ring = ring;
        int off = IoUringAbi.Params.CQ_OFF;
        this.headOffset = params.getInt(off + CqOffsets.HEAD);
        this.tailOffset = params.getInt(off + CqOffsets.TAIL);
        this.overflowOffset = params.getInt(off + CqOffsets.OVERFLOW);
        this.cqesOffset = params.getInt(off + CqOffsets.CQES);
        this.mask = ring.getInt(params.getInt(off + CqOffsets.RING_MASK));
        this.entries = ring.getInt(params.getInt(off + CqOffsets.RING_ENTRIES));
    }

    public int entries() {
        return entries;
    }

    /** CQEs the kernel dropped because the CQ was full; non-zero means the ring was sized wrong. */
    public int overflow() {
        return (int) U32.getVolatile(ring, overflowOffset);
    }

    /** Hands every available CQE to {@code handler} and releases their slots; returns how many. */
    public int reap(Handler handler) {
        int head = ring.getInt(headOffset); // only we write the head
        // acquire: CQE contents written by the kernel before it advanced the tail are visible below
        int tail = (int) U32.getAcquire(ring, tailOffset);
        int n = tail - head;
        for (; head != tail; head++) {
            int at = cqesOffset + (head & mask) * Cqe.SIZE;
            handler.completion(ring.getLong(at + Cqe.USER_DATA), ring.getInt(at + Cqe.RES), ring.getInt(at + Cqe.FLAGS));
        }
        if (n != 0) {
            // release: our reads of the CQEs above happen-before the kernel may overwrite their slots
            U32.setRelease(ring, headOffset, tail);
        }
        return n;
    }
}
