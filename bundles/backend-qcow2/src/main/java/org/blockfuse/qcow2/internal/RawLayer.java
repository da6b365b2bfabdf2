package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A raw backing file. Its size is rounded up to whole sectors like QEMU does; the tail past the end of the
 * file reads as zeros.
 */
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

    /** Reads stop at the length the file had when opened, so bytes appended later never contradict a hole. */
    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        long inFile = Math.max(0, Math.min(dst.remaining(), file.length() - offset));
        if (inFile > 0) {
            int oldLimit = Buffers.window(dst, inFile);
            try {
                file.readUpTo(offset, dst);
            } finally {
                dst.limit(oldLimit);
            }
        }
        if (dst.hasRemaining()) {
            Buffers.zero(dst, dst.remaining());
        }
    }

    /**
     * The file's bytes are data (Java cannot ask the OS for its holes, and data is always a safe answer); the
     * sector tail past the end of the file is a hole, as it reads as zeros and QEMU maps it so.
     */
    @Override
    public long status(long offset, long maxLength) {
        long end = file.length();
        if (offset < end) {
            return Math.min(maxLength, end - offset);
        }
        return -Math.min(maxLength, size - offset);
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
