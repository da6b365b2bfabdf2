package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;

/** A raw backing file. Its size is rounded up to whole sectors like QEMU does; the tail reads as zeros. */
final class RawLayer implements Layer {

    private static final long SECTOR = 512;

    private final ImageFile file;
    private final long size;

    RawLayer(ImageFile file) {
        this.file = file;
        this.size = Qcow2Format.alignUp(file.length(), SECTOR);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        file.readUpTo(offset, dst);
        if (dst.hasRemaining()) {
            Buffers.zero(dst, dst.remaining());
        }
    }

    /** Reported as data throughout: Java cannot ask the OS for holes, and data is always a safe answer. */
    @Override
    public long status(long offset, long maxLength) {
        return Math.min(maxLength, size - offset);
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
