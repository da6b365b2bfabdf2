package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;

import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;

/**
 * zstd clusters (compression_type 1). QEMU writes one frame per cluster followed by slack that may hold the
 * next cluster's data, so a one-shot decoder that insists on consuming all input would fail; this streams
 * until the wanted bytes are out and, when that is the whole cluster, requires the frame to be complete.
 */
final class ZstdDecompressor implements ClusterDecompressor {

    private final ContextPool<ZstdDecompressCtx> idle =
            new ContextPool<>(ContextPool.defaultCapacity(), ZstdDecompressCtx::close);

    /** Creates the first context eagerly so a missing native library is reported at open time. */
    ZstdDecompressor() {
        idle.offer(new ZstdDecompressCtx());
    }

    @Override
    public void decompress(ByteBuffer src, ByteBuffer dst, int clusterSize) throws IOException {
        ZstdDecompressCtx ctx = idle.poll();
        if (ctx == null) {
            ctx = new ZstdDecompressCtx();
        }
        int start = dst.position();
        boolean whole = dst.remaining() == clusterSize;
        try {
            boolean frameDone = false;
            while (dst.hasRemaining()) {
                int before = src.position() + dst.position();
                frameDone = ctx.decompressByteBufferStream(dst, src);
                if (src.position() + dst.position() == before) {
                    throw new IOException("compressed cluster (zstd) ends after " + (dst.position() - start)
                            + " of " + clusterSize + " bytes");
                }
            }
            if (whole && !frameDone) {
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
    public boolean prefixIsCheaper() {
        return false;
    }

    @Override
    public void close() {
        idle.close();
    }
}
