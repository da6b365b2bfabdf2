package org.blockfuse.qcow2.internal;

import java.nio.ByteBuffer;

/** Buffer helpers for the read path. */
final class Buffers {

    private static final int ZERO_CHUNK = 64 * 1024;
    private static final byte[] ZEROS = new byte[ZERO_CHUNK];

    private Buffers() {
    }

    /** Writes length zero bytes at dst's position (heap or direct buffer). */
    static void zero(ByteBuffer dst, long length) {
        long left = length;
        while (left > 0) {
            int n = (int) Math.min(left, ZERO_CHUNK);
            dst.put(ZEROS, 0, n);
            left -= n;
        }
    }

    /** Narrows dst's limit to length bytes past its position; returns the old limit for {@link ByteBuffer#limit(int)}. */
    static int window(ByteBuffer dst, long length) {
        int oldLimit = dst.limit();
        dst.limit(dst.position() + (int) length);
        return oldLimit;
    }
}
