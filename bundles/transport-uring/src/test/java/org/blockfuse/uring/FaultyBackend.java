package org.blockfuse.uring;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.NativeException;

/**
 * Test only (never reachable from a configuration): a backend with bad sectors. A read or write
 * that touches a faulty range fails with EIO, as a failing disk's pread/pwrite would, and leaves
 * the image untouched; everything else goes to the real backend. Flush, discard and the rest are
 * never faulted.
 */
final class FaultyBackend extends ForwardingBackend {
    /** One bad range: which directions fail there. */
    record Fault(long offset, long length, boolean reads, boolean writes) {
        static Fault failReads(long offset, long length) {
            return new Fault(offset, length, true, false);
        }

        static Fault failWrites(long offset, long length) {
            return new Fault(offset, length, false, true);
        }

        boolean hits(long start, long count, boolean write) {
            return (write ? writes : reads) && start < offset + length && offset < start + count;
        }
    }

    private final List<Fault> faults;
    private final AtomicLong injected = new AtomicLong();

    FaultyBackend(BlockBackend inner, List<Fault> faults) {
        super(inner);
        this.faults = List.copyOf(faults);
    }

    /** How many requests failed here so far. */
    long injected() {
        return injected.get();
    }

    private void check(long offset, long count, boolean write) throws NativeException {
        for (Fault f : faults) {
            if (f.hits(offset, count, write)) {
                injected.incrementAndGet();
                throw new NativeException("injected " + (write ? "pwrite" : "pread") + " fault at " + offset
                        + " (+" + count + ")", Errno.EIO);
            }
        }
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        check(offset, dst.remaining(), false);
        inner.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        check(offset, src.remaining(), true);
        inner.write(offset, src);
    }
}
