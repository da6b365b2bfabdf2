package org.blockfuse.uring;

import java.io.IOException;
import java.nio.ByteBuffer;

import org.blockfuse.api.BlockBackend;

/**
 * Test decorators' base: every call goes to the real backend; a decorator overrides only what it
 * changes. directFd() keeps its default (-1), so every request goes through read/write.
 */
abstract class ForwardingBackend implements BlockBackend {
    protected final BlockBackend inner;

    ForwardingBackend(BlockBackend inner) {
        this.inner = inner;
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
        inner.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
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
