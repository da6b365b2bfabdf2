package org.blockfuse.uring;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.LockSupport;

import org.blockfuse.api.BlockBackend;

/** A backend whose reads and writes take at least {@code nanos}, like a slow disk. */
final class SlowBackend extends ForwardingBackend {
    private final long nanos;

    SlowBackend(BlockBackend inner, long nanos) {
        super(inner);
        this.nanos = nanos;
    }

    private void delay() {
        long end = System.nanoTime() + nanos;
        while (System.nanoTime() < end) {
            LockSupport.parkNanos(end - System.nanoTime());
        }
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
}
