package org.blockfuse.nbd.internal;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The reply side of one socket, buffered: one read(2) takes in as many replies as have arrived, so
 * a busy connection costs far less than a system call per header field. Payloads larger than what
 * is buffered are read straight into their destination. Used by the connection's reader only.
 */
final class Inbound {
    private static final int CAPACITY = 256 * 1024;
    private final Wire ch;
    /** Unread bytes are position..limit. */
    private final ByteBuffer in = ByteBuffer.allocateDirect(CAPACITY).limit(0);

    Inbound(Wire ch) {
        this.ch = ch;
    }

    /** Makes at least {@code n} (≤ capacity) bytes readable, reading as many as the socket has. */
    private void ensure(int n) throws IOException {
        if (in.remaining() >= n) {
            return;
        }
        in.compact();
        try {
            while (in.position() < n) {
                if (ch.read(in) < 0) {
                    throw new EOFException("the server closed the connection");
                }
            }
        } finally {
            in.flip();
        }
    }

    int getInt() throws IOException {
        ensure(4);
        return in.getInt();
    }

    long getLong() throws IOException {
        ensure(8);
        return in.getLong();
    }

    short getShort() throws IOException {
        ensure(2);
        return in.getShort();
    }

    /** The next {@code n} bytes (n ≤ 1 MiB), copied out. */
    ByteBuffer take(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        readInto(b);
        return b.flip();
    }

    /** Fills {@code dst} from its position to its limit: buffered bytes first, the rest from the socket. */
    void readInto(ByteBuffer dst) throws IOException {
        copyBuffered(dst);
        if (!dst.hasRemaining()) {
            return;
        }
        if (dst.remaining() >= CAPACITY / 4) {
            while (dst.hasRemaining()) { // large: straight into the destination
                if (ch.read(dst) < 0) {
                    throw new EOFException("the server closed the connection");
                }
            }
            return;
        }
        ensure(dst.remaining());
        copyBuffered(dst);
    }

    /** Moves as many buffered bytes into {@code dst} as both have. */
    private void copyBuffered(ByteBuffer dst) {
        int n = Math.min(in.remaining(), dst.remaining());
        int limit = in.limit();
        dst.put(in.limit(in.position() + n));
        in.limit(limit);
    }
}
