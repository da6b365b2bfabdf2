package org.blockfuse.uring;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.LockSupport;

import org.blockfuse.api.BlockBackend;

/** A backend whose reads and writes take at least {@code nanos}, like a slow disk. */
final class SlowBackend implements BlockBackend {
    private final BlockBackend inner;
    private final long nanos;

    SlowBackend(BlockBackend inner, long nanos) {
        this.inner = inner;
        this.nanos = nanos;
    }

    private void delay() {
        long end = System.nanoTime() + nanos;
        while (System.nanoTime() < end) {
            LockSupport.parkNanos(end - System.nanoTime());
        }
    }

    @Override
    public long size() {
        return inner.size();
    }

    @Override
    public boolean writable() {
        return inner.writable();
    }

    @Override
    public long allocatedBytes() throws IOException {
        return inner.allocatedBytes();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        delay();
        inner.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        delay();
        inner.write(offset, src);
    }

    @Override
    public void flush() throws IOException {
        inner.flush();
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        inner.discard(offset, length);
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        inner.writeZeroes(offset, length);
    }

    @Override
    public void allocate(long offset, long length) throws IOException {
        inner.allocate(offset, length);
    }

    @Override
    public void resize(long newSize) throws IOException {
        inner.resize(newSize);
    }

    @Override
    public Extent extentAt(long offset) throws IOException {
        return inner.extentAt(offset);
    }

    @Override
    public void close() throws IOException {
        inner.close();
    }
}
