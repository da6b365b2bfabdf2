package org.blockfuse.uring.internal;

import java.io.IOException;
import java.nio.ByteBuffer;

import org.blockfuse.nativeio.Libc;
import org.blockfuse.uring.internal.IoUringAbi.Iovec;

/**
 * All memory one queue hands to the kernel, in one anonymous private mapping that lives exactly as
 * long as the queue's entries can be written by the kernel:
 * <pre>
 *   [depth x 512-byte header slots][depth x iovec[2]][8-byte wake-up counter] ... page-aligned:
 *   [depth x payload buffers, each rounded up to whole pages]
 * </pre>
 * Pages are committed when first touched (no MAP_POPULATE): a 4 KiB workload keeps only the first
 * page of each payload resident. {@link #bytes()} is the reserved size, which is what we report.
 */
public final class QueueMemory {
    static final int PAGE = 4096;
    /** fuse_uring_req_header is 288 bytes; slots are 512 to keep each header cache-line aligned. */
    static final int HEADER_SLOT = 512;
    private static final int MAP_PRIVATE = 0x02;
    private static final int MAP_ANONYMOUS = 0x20;

    private final long address;
    private final long length;
    private final ByteBuffer all;
    private final int depth;
    private final int payloadSize;
    private final int payloadStride;
    private final int iovecsOffset;
    private final int wakeOffset;
    private final int payloadsOffset;
    private boolean unmapped;

    private QueueMemory(long address, long length, int depth, int payloadSize) {
        this.address = address;
        this.length = length;
        this.depth = depth;
        this.payloadSize = payloadSize;
        this.payloadStride = layoutStride(payloadSize);
        this.iovecsOffset = depth * HEADER_SLOT;
        this.wakeOffset = iovecsOffset + depth * FuseUringAbi.IOV_SEGS * Iovec.SIZE;
        this.payloadsOffset = layoutPayloadsOffset(depth);
        this.all = Libc.wrap(address, (int) length);
    }

    private static int layoutStride(int payloadSize) {
        return (payloadSize + PAGE - 1) / PAGE * PAGE;
    }

    private static int layoutPayloadsOffset(int depth) {
        int control = depth * (HEADER_SLOT + FuseUringAbi.IOV_SEGS * Iovec.SIZE) + 8;
        return (control + PAGE - 1) / PAGE * PAGE;
    }

    /** Bytes a queue of this shape maps. */
    public static long bytesFor(int depth, int payloadSize) {
        return layoutPayloadsOffset(depth) + (long) depth * layoutStride(payloadSize);
    }

    public static QueueMemory map(int depth, int payloadSize) throws IOException {
        long length = bytesFor(depth, payloadSize);
        if (length > Integer.MAX_VALUE) {
            throw new IOException("queue memory of " + (length >> 20) + " MiB is too large; lower queue-depth");
        }
        long address = Libc.mmap(length, Libc.PROT_READ | Libc.PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        QueueMemory m = new QueueMemory(address, length, depth, payloadSize);
        // the iovecs never change: header and payload of each entry
        for (int i = 0; i < depth; i++) {
            int iov = m.iovecOffset(i);
            m.all.putLong(iov + Iovec.BASE, address + (long) i * HEADER_SLOT);
            m.all.putLong(iov + Iovec.LEN, FuseUringAbi.ReqHeader.SIZE);
            m.all.putLong(iov + Iovec.SIZE + Iovec.BASE, address + m.payloadsOffset + (long) i * m.payloadStride);
            m.all.putLong(iov + Iovec.SIZE + Iovec.LEN, payloadSize);
        }
        return m;
    }

    private int iovecOffset(int entry) {
        return iovecsOffset + entry * FuseUringAbi.IOV_SEGS * Iovec.SIZE;
    }

    public int depth() {
        return depth;
    }

    public long bytes() {
        return length;
    }

    /** The 288-byte header buffer of an entry, indexed from 0. */
    public ByteBuffer header(int entry) {
        return all.slice(entry * HEADER_SLOT, FuseUringAbi.ReqHeader.SIZE).order(all.order());
    }

    /** The payload buffer of an entry, indexed from 0. */
    public ByteBuffer payload(int entry) {
        return all.slice(payloadsOffset + entry * payloadStride, payloadSize).order(all.order());
    }

    /** Address of the entry's iovec[2], for REGISTER. */
    public long iovecs(int entry) {
        return address + iovecOffset(entry);
    }

    /** Address of the 8 bytes the wake-up eventfd read lands in. */
    public long wakeCounter() {
        return address + wakeOffset;
    }

    /** Frees the mapping. Only once no entry can be written by the kernel any more. */
    public void unmap() {
        if (!unmapped) {
            unmapped = true;
            Libc.munmap(address, length);
        }
    }
}
