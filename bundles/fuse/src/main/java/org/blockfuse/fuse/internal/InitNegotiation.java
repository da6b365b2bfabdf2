package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.MountException;

import java.nio.ByteBuffer;

import org.blockfuse.fuse.FuseAbi.InHeader;
import org.blockfuse.fuse.FuseAbi.InitFlags;
import org.blockfuse.fuse.FuseAbi.InitIn;
import org.blockfuse.fuse.FuseAbi.InitOut;
import org.blockfuse.fuse.FuseAbi.Op;
import org.blockfuse.fuse.FuseAbi.OutHeader;

/**
 * Answers FUSE_INIT. We ask for asynchronous reads and direct I/O, big writes with
 * FUSE_MAX_PAGES, and never FUSE_OVER_IO_URING: rings are registered after INIT and the kernel
 * switches to them live (measured), so a mount can never hang waiting for rings that fail.
 */
public final class InitNegotiation {
    public static final int PAGE = 4096;
    /** The kernel's per-request page limit without FUSE_MAX_PAGES. */
    static final int LEGACY_MAX_PAGES = 32;
    static final int MAX_BACKGROUND = 256;
    static final long WANTED = InitFlags.ASYNC_READ | InitFlags.BIG_WRITES | InitFlags.ASYNC_DIO
            | InitFlags.MAX_PAGES | InitFlags.INIT_EXT | InitFlags.DIRECT_IO_ALLOW_MMAP;

    /** The INIT flags the kernel offered at the latest INIT in this JVM, -1 before any (a kernel fact, JVM-wide). */
    private static volatile long lastOffered = -1;

    public static long lastOffered() {
        return lastOffered;
    }

    /** The outcome: what the kernel and we agreed on. */
    public record Result(int minor, long flags, int maxWrite, int maxPages, int maxReadahead) {
        public boolean passthrough() {
            return (flags & InitFlags.PASSTHROUGH) != 0;
        }
    }

    /** Backing files are ordinary files, not FUSE files themselves: one level of stacking. */
    static final int MAX_STACK_DEPTH = 1;

    private InitNegotiation() {
    }

    /**
     * Checks the INIT request and writes the reply (out header included) into {@code reply}.
     * @param request   the whole request as read, from index 0
     * @param wantWrite the max_write we would like (a multiple of 4096)
     * @return the agreement; the reply length is {@link #REPLY_LENGTH}
     * @throws MountException when the request is not a usable INIT
     */
    public static Result answer(ByteBuffer request, int length, ByteBuffer reply, int wantWrite) throws MountException {
        return answer(request, length, reply, wantWrite, false);
    }

    /** As above; with {@code passthrough} also asks for FUSE_PASSTHROUGH (granted only if the kernel offers it). */
    public static Result answer(ByteBuffer request, int length, ByteBuffer reply, int wantWrite, boolean passthrough)
            throws MountException {
        if (length < InHeader.SIZE + 16) {
            throw new MountException("first request from the kernel is " + length + " bytes, too short for INIT");
        }
        int opcode = request.getInt(InHeader.OPCODE);
        if (opcode != Op.INIT) {
            throw new MountException("first request from the kernel is " + Op.name(opcode) + ", expected INIT");
        }
        int major = request.getInt(InHeader.SIZE + InitIn.MAJOR);
        int minor = request.getInt(InHeader.SIZE + InitIn.MINOR);
        if (major != FuseAbi.KERNEL_VERSION) {
            throw new MountException("kernel speaks FUSE " + major + "." + minor + "; blockfuse needs 7.x");
        }
        if (minor < 28) {
            throw new MountException("kernel FUSE protocol 7." + minor + " is too old; blockfuse needs 7.28 or later");
        }
        long offered = Integer.toUnsignedLong(request.getInt(InHeader.SIZE + InitIn.FLAGS));
        if ((offered & InitFlags.INIT_EXT) != 0 && length >= InHeader.SIZE + InitIn.SIZE) {
            offered |= Integer.toUnsignedLong(request.getInt(InHeader.SIZE + InitIn.FLAGS2)) << 32;
        }
        int readahead = request.getInt(InHeader.SIZE + InitIn.MAX_READAHEAD);
        lastOffered = offered;
        long flags = (WANTED | (passthrough ? InitFlags.PASSTHROUGH : 0)) & offered;
        int maxPages = (flags & InitFlags.MAX_PAGES) != 0 ? wantWrite / PAGE : LEGACY_MAX_PAGES;
        int maxWrite = Math.min(wantWrite, maxPages * PAGE);
        int agreedMinor = Math.min(minor, FuseAbi.KERNEL_MINOR_VERSION);

        for (int i = 0; i < OutHeader.SIZE + InitOut.SIZE; i += 8) {
            reply.putLong(i, 0);
        }
        int o = OutHeader.SIZE;
        reply.putInt(OutHeader.LEN, REPLY_LENGTH);
        reply.putInt(OutHeader.ERROR, 0);
        reply.putLong(OutHeader.UNIQUE, request.getLong(InHeader.UNIQUE));
        reply.putInt(o + InitOut.MAJOR, FuseAbi.KERNEL_VERSION);
        reply.putInt(o + InitOut.MINOR, agreedMinor);
        reply.putInt(o + InitOut.MAX_READAHEAD, readahead);
        reply.putInt(o + InitOut.FLAGS, (int) flags);
        reply.putShort(o + InitOut.MAX_BACKGROUND, (short) MAX_BACKGROUND);
        reply.putShort(o + InitOut.CONGESTION_THRESHOLD, (short) (MAX_BACKGROUND * 3 / 4));
        reply.putInt(o + InitOut.MAX_WRITE, maxWrite);
        reply.putInt(o + InitOut.TIME_GRAN, 1);
        reply.putShort(o + InitOut.MAX_PAGES, (short) maxPages);
        reply.putInt(o + InitOut.FLAGS2, (int) (flags >>> 32));
        if ((flags & InitFlags.PASSTHROUGH) != 0) {
            reply.putInt(o + InitOut.MAX_STACK_DEPTH, MAX_STACK_DEPTH);
        }
        return new Result(agreedMinor, flags, maxWrite, maxPages, readahead);
    }

    public static final int REPLY_LENGTH = OutHeader.SIZE + InitOut.SIZE;
}
