package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;

/** The exported view of a qcow2 chain: read-only, thread-safe, sized by the top image. */
final class Qcow2Backend implements BlockBackend {

    private static final String READ_ONLY = "qcow2 images are exported read-only";

    private final Path image;
    private final Qcow2Layer top;

    private Qcow2Backend(Path image, Qcow2Layer top) {
        this.image = image;
        this.top = top;
    }

    static Qcow2Backend open(Path image, OpenOptions options) throws IOException {
        return new Qcow2Backend(image, ChainOpener.openTop(image, options));
    }

    @Override
    public long size() {
        return top.size();
    }

    @Override
    public boolean writable() {
        return false;
    }

    /** The top file's length: Java has no portable view of st_blocks, and the length is an upper bound. */
    @Override
    public long allocatedBytes() throws IOException {
        return Files.size(image);
    }

    /** Reads clamp at the end of the disk: bytes past {@link #size()} read as zeros. */
    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        if (offset < 0) {
            throw new IllegalArgumentException("negative offset " + offset);
        }
        long inside = Math.max(0, Math.min(dst.remaining(), top.size() - offset));
        if (inside > 0) {
            int oldLimit = Buffers.window(dst, inside);
            try {
                top.read(offset, dst);
            } finally {
                dst.limit(oldLimit);
            }
        }
        Buffers.zero(dst, dst.remaining());
    }

    @Override
    public Extent extentAt(long offset) throws IOException {
        long size = top.size();
        if (offset < 0 || offset >= size) {
            throw new IllegalArgumentException("offset " + offset + " outside the disk (size " + size + ")");
        }
        long first = top.status(offset, size - offset);
        boolean data = first > 0;
        long end = offset + Math.abs(first);
        // the walk is bounded by the L1 table, whose size the header checks cap; LSEEK additionally
        // bounds how many extents it walks (ExportHandler), so no cap here: an extent is always the whole run
        while (end < size) {
            long next = top.status(end, size - end);
            if ((next > 0) != data) {
                break;
            }
            end += Math.abs(next);
        }
        return new Extent(offset, end - offset, data);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        throw new ImageException(READ_ONLY);
    }

    @Override
    public void flush() {
        // nothing is ever written
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        throw new ImageException(READ_ONLY);
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        throw new ImageException(READ_ONLY);
    }

    @Override
    public void allocate(long offset, long length) throws IOException {
        throw new ImageException(READ_ONLY);
    }

    @Override
    public void resize(long newSize) throws IOException {
        throw new ImageException(READ_ONLY);
    }

    @Override
    public void close() throws IOException {
        top.close();
    }
}
