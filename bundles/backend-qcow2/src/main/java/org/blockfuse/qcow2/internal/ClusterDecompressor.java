package org.blockfuse.qcow2.internal;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/** Expands one compressed cluster. Implementations are thread-safe (they pool their native contexts). */
interface ClusterDecompressor extends Closeable {

    /**
     * Decodes src (position..limit; may contain slack after the stream) until dst is completely full.
     * @throws IOException when the stream is corrupt or ends before dst is full
     */
    void decompress(ByteBuffer src, byte[] dst) throws IOException;

    @Override
    void close();
}
