package org.blockfuse.uring.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.blockfuse.uring.internal.IoUringAbi.Sqe;
import org.blockfuse.uring.internal.IoUringAbi.SqOffsets;

/**
 * The submission side of one ring: the SQ ring indices (shared with the kernel) and the SQE array.
 * Used by exactly one thread. SQE slots are identity-mapped through the index array at setup, so
 * publishing an SQE is just "fill slot tail&mask, advance the tail".
 */
public final class SubmissionQueue {
    /** Ring indices are u32 in shared memory; the index passed to this handle is a byte offset. */
    private static final VarHandle U32 = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.nativeOrder());

    private final ByteBuffer ring;
    private final ByteBuffer sqes;
    private final int headOffset;
    private final int tailOffset;
    private final int flagsOffset;
    private final int mask;
    private final int entries;
    /** Our copy of the tail: SQEs up to here are filled, those from {@link #published} on are not yet visible. */
    private int tail;
    private int published;

    SubmissionQueue(ByteBuffer ring, ByteBuffer sqes, ByteBuffer params) {
        this.ring = ring;
        this.sqes = sqes;
        int off = IoUringAbi.Params.SQ_OFF;
        this.headOffset = params.getInt(off + SqOffsets.HEAD);
        this.tailOffset = params.getInt(off + SqOffsets.TAIL);
        this.flagsOffset = params.getInt(off + SqOffsets.FLAGS);
        this.mask = ring.getInt(params.getInt(off + SqOffsets.RING_MASK));
        this.entries = ring.getInt(params.getInt(off + SqOffsets.RING_ENTRIES));
        int array = params.getInt(off + SqOffsets.ARRAY);
        for (int i = 0; i < entries; i++) {
            ring.putInt(array + 4 * i, i);
        }
        this.tail = ring.getInt(tailOffset);
        this.published = tail;
    }

    public int entries() {
        return entries;
    }

    /** Free SQE slots: the kernel releases slots as it consumes them (head moves during io_uring_enter). */
    public int free() {
        return entries - (tail - kernelHead());
    }

    /** How far the kernel has consumed SQEs. */
    private int kernelHead() {
        // acquire: the kernel's reads of the slots before head happen-before we refill them
        return (int) U32.getAcquire(ring, headOffset);
    }

    /**
     * Claims the next slot, zeroes it and returns its byte offset in {@link #sqes()}.
     * The caller fills it; it becomes visible to the kernel at the next {@link #publish()}.
     */
    public int claim() {
        if (free() <= 0) {
            throw new IllegalStateException("submission queue full: more SQEs in flight than the ring was sized for");
        }
        int offset = (tail & mask) * Sqe.SIZE;
        for (int i = 0; i < Sqe.SIZE; i += 8) {
            sqes.putLong(offset + i, 0L);
        }
        tail++;
        return offset;
    }

    public ByteBuffer sqes() {
        return sqes;
    }

    /** Makes every claimed SQE visible to the kernel; returns how many are waiting to be submitted. */
    public int publish() {
        if (tail != published) {
            // release: the SQE contents written above must be visible before the kernel sees the new tail
            U32.setRelease(ring, tailOffset, tail);
            published = tail;
        }
        return tail - kernelHead();
    }

    /** SQ ring flags (e.g. {@link IoUringAbi#SQ_CQ_OVERFLOW}). */
    public int flags() {
        return (int) U32.getVolatile(ring, flagsOffset);
    }
}
