package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Raw deflate (no zlib header or trailer), QEMU's default cluster compression. The compressed length is
 * only known to sector precision, so decoding stops as soon as a full cluster is out, whether or not the
 * stream reported its end.
 */
final class ZlibDecompressor implements ClusterDecompressor {

    private final Queue<Inflater> idle = new ConcurrentLinkedQueue<>();

    @Override
    public void decompress(ByteBuffer src, byte[] dst) throws IOException {
        Inflater inflater = idle.poll();
        if (inflater == null) {
            inflater = new Inflater(true);
        }
        try {
            inflater.setInput(src);
            int produced = 0;
            while (produced < dst.length) {
                int n = inflater.inflate(dst, produced, dst.length - produced);
                produced += n;
                if (n == 0 && produced < dst.length) {
                    // finished early, starved or asking for a dictionary: all mean the cluster is short
                    throw new IOException("compressed cluster (deflate) ends after " + produced + " of "
                            + dst.length + " bytes");
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
    public void close() {
        for (Inflater inflater; (inflater = idle.poll()) != null; ) {
            inflater.end();
        }
    }
}
