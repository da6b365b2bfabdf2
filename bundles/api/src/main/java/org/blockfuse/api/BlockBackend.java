package org.blockfuse.api;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * An open disk image seen as a flat array of bytes (the guest view).
 * Implementations are thread-safe: transports call them from many threads at once.
 * Offsets and lengths are in bytes; callers keep requests inside {@link #size()}
 * except where a method says otherwise.
 */
public interface BlockBackend extends AutoCloseable {

    /** Virtual size in bytes. */
    long size();

    /** True when writes, discards and resizes are allowed. */
    boolean writable();

    /** Bytes the image really occupies on its host storage (for st_blocks). */
    long allocatedBytes() throws IOException;

    /** Fills {@code dst} from its position to its limit with the bytes at {@code offset}. */
    void read(long offset, ByteBuffer dst) throws IOException;

    /** Writes {@code src} from its position to its limit at {@code offset}; may extend the image. */
    void write(long offset, ByteBuffer src) throws IOException;

    /** Makes every completed write durable. */
    void flush() throws IOException;

    /** Deallocates the range; it then reads as zeros. */
    void discard(long offset, long length) throws IOException;

    /** Makes the range read as zeros, keeping it allocated when possible. */
    void writeZeroes(long offset, long length) throws IOException;

    /** Reserves storage for the range; may extend the image. */
    void allocate(long offset, long length) throws IOException;

    /** Changes the virtual size. */
    void resize(long newSize) throws IOException;

    /**
     * The run of equal allocation state that starts at {@code offset} (which is below {@link #size()}).
     * Data means "the image stores bytes here"; a hole reads as zeros (or from a backing layer that has none).
     */
    Extent extentAt(long offset) throws IOException;

    /**
     * The file descriptor of a host file holding the guest bytes at the same offsets, or -1.
     * Transports may use it to submit asynchronous I/O directly (raw images only).
     */
    default int directFd() {
        return -1;
    }

    /** Required alignment of offset, length and buffer address for {@link #directFd()} I/O (1 = none). */
    default int directAlignment() {
        return 1;
    }

    /**
     * A buffered (not O_DIRECT) descriptor of a host file holding the guest bytes at the same
     * offsets, which the kernel may read and write directly for opens answered with FUSE
     * passthrough; -1 when the format cannot be passed through (anything but raw). Once handed
     * out, writes past the end may grow the file behind the backend's back: {@link #size()} must
     * then follow the file.
     */
    default int passthroughFd() {
        return -1;
    }

    /** Whether {@link #passthroughFd()} would give a descriptor (asking does not hand one out). */
    default boolean supportsPassthrough() {
        return false;
    }

    /** True for a block device image: its size is fixed by the device, writes past the end fail. */
    default boolean blockDevice() {
        return false;
    }

    /**
     * How the backend reaches its image, for export-list, when that can change while the export
     * runs (a network backend: its server and connections); empty for local images.
     */
    default String describeConnection() {
        return "";
    }

    @Override
    void close() throws IOException;

    /** One run of the allocation map. */
    record Extent(long offset, long length, boolean data) {
        public long end() {
            return offset + length;
        }
    }
}
