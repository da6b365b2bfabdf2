package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;

/**
 * zstd clusters (compression_type 1). QEMU writes one frame per cluster followed by slack that may hold the
 * next cluster's data, so a one-shot decoder that insists on consuming all input would fail; this streams
 * until exactly one cluster is out and then requires the frame to be complete.
 */
final class ZstdDecompressor implements ClusterDecompressor {

    private final Queue<ZstdDecompressCtx> idle = new ConcurrentLinkedQueue<>();

    /** Creates the first context eagerly so a missing native library is reported at open time. */
    ZstdDecompressor() {
        idle.offer(new ZstdDecompressCtx());
    }

    @Override
    public void decompress(ByteBuffer src, byte[] dst) throws IOException {
        ZstdDecompressCtx ctx = idle.poll();
        if (ctx == null) {
            ctx = new ZstdDecompressCtx();
        }
        try {
            ByteBuffer out = ByteBuffer.wrap(dst);
            boolean frameDone = false;
            while (out.hasRemaining()) {
                int before = src.position() + out.position();
                frameDone = ctx.decompressByteBufferStream(out, src);
                if (src.position() + out.position() == before) {
                    throw new IOException("compressed cluster (zstd) ends after " + out.position() + " of "
                            + dst.length + " bytes");
                }
            }
            if (!frameDone) {
                throw new IOException("compressed cluster (zstd) holds more than one cluster of data");
            }
        } catch (ZstdException e) {
            throw new IOException("corrupt compressed cluster (zstd): " + e.getMessage(), e);
        } finally {
            ctx.reset();
            idle.offer(ctx);
        }
    }

    @Override
    public void close() {
        for (ZstdDecompressCtx ctx; (ctx = idle.poll()) != null; ) {
            ctx.close();
        }
    }
}
