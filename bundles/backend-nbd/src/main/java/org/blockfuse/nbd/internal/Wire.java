package org.blockfuse.nbd.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * The byte stream of one connection: the socket itself, or TLS over it ({@link TlsWire}). Reads
 * come from the connection's reader only; writes from the holder of the send lock.
 */
interface Wire {
    /** Reads at least one byte into {@code dst} (blocking); -1 at the end of the stream. */
    int read(ByteBuffer dst) throws IOException;

    /** Writes every byte of {@code srcs[0..count)} (blocking). */
    void writeFully(ByteBuffer[] srcs, int count) throws IOException;

    /** The socket underneath, which closing ends every blocked read and write. */
    SocketChannel channel();

    default void writeFully(ByteBuffer src) throws IOException {
        writeFully(new ByteBuffer[] {src}, 1);
    }

    /** The plain socket. */
    static Wire plain(SocketChannel ch) {
        return new Wire() {
            @Override
            public int read(ByteBuffer dst) throws IOException {
                return ch.read(dst);
            }

            @Override
            public void writeFully(ByteBuffer[] srcs, int count) throws IOException {
                long total = 0;
                for (int i = 0; i < count; i++) {
                    total += srcs[i].remaining();
                }
                for (long written = 0; written < total;) {
                    written += ch.write(srcs, 0, count);
                }
            }

            @Override
            public SocketChannel channel() {
                return ch;
            }
        };
    }
}
