package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Raw deflate (no zlib header or trailer), QEMU's default cluster compression. The compressed length is
 * only known to sector precision, so decoding stops as soon as the wanted bytes are out, whether or not the
 * stream reported its end. Inflaters are pooled and reset, never set up per call.
 */
final class ZlibDecompressor implements ClusterDecompressor {

    private final ContextPool<Inflater> idle = new ContextPool<>(ContextPool.defaultCapacity(), Inflater::end);

    @Override
    public void decompress(ByteBuffer src, ByteBuffer dst, int clusterSize) throws IOException {
        Inflater inflater = idle.poll();
        if (inflater == null) {
            inflater = new Inflater(true);
        }
        int start = dst.position();
        try {
            inflater.setInput(src);
            while (dst.hasRemaining()) {
                if (inflater.inflate(dst) == 0 && dst.hasRemaining()) {
                    // finished early, starved or asking for a dictionary: all mean the cluster is short
                    throw new IOException("compressed cluster (deflate) ends after " + (dst.position() - start)
                            + " of " + clusterSize + " bytes");
                }
            }
        } catch (DataFormatException e) {
            throw new IOException("corrupt compressed cluster (deflate): " + e.getMessage(), e);
        } finally {
            inflater.reset();
            idle.offer(inflater);
        }
    }

    @Override
    public boolean prefixIsCheaper() {
        return true;
    }

    @Override
    public void close() {
        idle.close();
    }
}
