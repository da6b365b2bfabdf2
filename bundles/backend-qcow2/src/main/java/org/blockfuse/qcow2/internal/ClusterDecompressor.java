package org.blockfuse.qcow2.internal;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/** Expands one compressed cluster. Implementations are thread-safe (they pool their native contexts). */
interface ClusterDecompressor extends Closeable {

    /**
     * Decodes src (position..limit; may contain slack after the stream) until dst (position..limit, heap or
     * direct) is full: dst receives the first dst.remaining() bytes of the cluster. When that is the whole
     * cluster (clusterSize bytes) the stream must hold exactly one cluster; a shorter prefix stops decoding
     * early, which is what makes a small read of a compressed cluster cheaper than expanding all of it.
     * @throws IOException when the stream is corrupt or ends before dst is full
     */
    void decompress(ByteBuffer src, ByteBuffer dst, int clusterSize) throws IOException;

    /**
     * True when decoding a prefix costs about its share of the whole cluster (deflate); false when the
     * format decodes whole blocks anyway (zstd), so a prefix saves nothing and the whole cluster is expanded.
     */
    boolean prefixIsCheaper();

    @Override
    void close();
}
