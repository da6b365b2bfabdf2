package org.blockfuse.fuse.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;

import org.blockfuse.api.BlockBackend;

/**
 * A {@link MemoryBackend} behind assertions: every range the handler passes must lie inside the
 * image as it is at that moment, nothing may change a read-only export, and no resize may pass
 * {@code maxSize} (refused like a failing disk, so a huge length never turns into a huge array).
 * Optionally injects I/O errors. Allocation-free on every path that does not fail the test, so
 * the fuzz test can measure the handler's own allocations.
 */
final class CheckedBackend implements BlockBackend {
    /** Thrown for injected faults and refused resizes; stackless and shared: throwing it allocates nothing. */
    static final IOException FAULT = new IOException("injected backend fault") {
        private static final long serialVersionUID = 1L;

        @Override
        public synchronized Throwable fillInStackTrace() {
            return this;
        }
    };

    final MemoryBackend image;
    private final boolean mayChange;
    private final long maxSize;
    private final SplittableRandom random;
    private final int faultOneIn;
    /** Every {@link #FAULT} thrown so far: each must come back as one EIO. */
    long faults;

    /**
     * @param faultOneIn fail one call in this many (0: never)
     */
    CheckedBackend(MemoryBackend image, boolean mayChange, long maxSize, SplittableRandom random, int faultOneIn) {
        this.image = image;
        this.mayChange = mayChange;
        this.maxSize = maxSize;
        this.random = random;
        this.faultOneIn = faultOneIn;
    }

    private void maybeFail() throws IOException {
        if (faultOneIn > 0 && random.nextInt(faultOneIn) == 0) {
            faults++;
            throw FAULT;
        }
    }

    private static AssertionError broken(String what) {
        return new AssertionError("the handler passed the backend " + what);
    }

    private void inside(String call, long offset, long length, boolean change) {
        if (change && !mayChange) {
            throw broken(call + " on a read-only export");
        }
        long size = image.size();
        if (offset < 0 || length < 0 || offset > size - length) {
            throw broken(call + "(" + offset + ", " + length + ") outside the image of " + size + " bytes");
        }
    }

    @Override
    public long size() {
        return image.size();
    }

    @Override
    public boolean writable() {
        return image.writable();
    }

    @Override
    public long allocatedBytes() throws IOException {
        maybeFail();
        return image.allocatedBytes();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        inside("read", offset, dst.remaining(), false);
        maybeFail();
        image.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        inside("write", offset, src.remaining(), true);
        if (src.remaining() == 0) {
            throw broken("an empty write at " + offset);
        }
        maybeFail();
        image.write(offset, src);
    }

    @Override
    public void flush() throws IOException {
        maybeFail();
        image.flush();
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        inside("discard", offset, length, true);
        maybeFail();
        image.discard(offset, length);
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        inside("writeZeroes", offset, length, true);
        maybeFail();
        image.writeZeroes(offset, length);
    }

    @Override
    public void allocate(long offset, long length) throws IOException {
        inside("allocate", offset, length, true);
        maybeFail();
        image.allocate(offset, length);
    }

    @Override
    public void resize(long newSize) throws IOException {
        if (!mayChange) {
            throw broken("resize on a read-only export");
        }
        if (newSize < 0) {
            throw broken("resize(" + newSize + ")");
        }
        if (newSize > maxSize) {
            faults++;
            throw FAULT; // as a disk that cannot hold it; the handler must not have allocated for it
        }
        maybeFail();
        image.resize(newSize);
    }

    @Override
    public Extent extentAt(long offset) throws IOException {
        if (offset < 0 || offset >= image.size()) {
            throw broken("extentAt(" + offset + ") outside the image of " + image.size() + " bytes");
        }
        maybeFail();
        return image.extentAt(offset);
    }

    @Override
    public void close() {
    }
}
