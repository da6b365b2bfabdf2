package org.blockfuse.export.internal;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.Map;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.raw.RawBackendFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** passthrough=auto: only where every semantic holds without the server seeing the I/O. */
class PassthroughTest {
    @TempDir
    Path dir;

    private BlockBackend raw(boolean writable) throws Exception {
        Path image = dir.resolve("i.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        return new RawBackendFactory().open(new BackendRequest(image, writable, Map.of()));
    }

    private static ExportSpec spec(boolean writable, boolean growable, Map<String, String> options) {
        return new ExportSpec("n", Path.of("/i.raw"), "raw", Path.of("/m.img"), writable, growable, "auto", "auto", options);
    }

    @Test
    void readOnlyAndGrowableRawExportsArePassedThroughAWritableFixedSizeFileIsNot() throws Exception {
        try (BlockBackend ro = raw(false)) {
            assertNull(Passthrough.whyNot(spec(false, false, Map.of()), ro, true));
        }
        try (BlockBackend rw = raw(true)) {
            assertNull(Passthrough.whyNot(spec(true, true, Map.of()), rw, true));
            assertTrue(Passthrough.whyNot(spec(true, false, Map.of()), rw, true).contains("would grow"));
            assertTrue(Passthrough.whyNot(spec(true, true, Map.of("cache", "none")), rw, true).startsWith("cache=none"));
            assertTrue(Passthrough.whyNot(spec(true, true, Map.of()), rw, false).contains("CAP_SYS_ADMIN"));
        }
    }

    @Test
    void aFormatThatCannotBePassedThroughSaysSo() throws Exception {
        try (BlockBackend rw = raw(true)) {
            BlockBackend notRaw = new org.blockfuse.api.BlockBackend() {
                // every call but supportsPassthrough goes nowhere: whyNot asks nothing else
                public long size() { return rw.size(); }
                public boolean writable() { return false; }
                public long allocatedBytes() { return 0; }
                public void read(long o, java.nio.ByteBuffer d) { }
                public void write(long o, java.nio.ByteBuffer s) { }
                public void flush() { }
                public void discard(long o, long l) { }
                public void writeZeroes(long o, long l) { }
                public void allocate(long o, long l) { }
                public void resize(long n) { }
                public Extent extentAt(long o) { return new Extent(o, 1, true); }
                public void close() { }
            };
            ExportSpec qcow2 = new ExportSpec("n", Path.of("/i.qcow2"), "qcow2", Path.of("/m.img"), false, false, "auto",
                    "auto", Map.of());
            assertTrue(Passthrough.whyNot(qcow2, notRaw, true).startsWith("qcow2 images are served by blockfuse"));
        }
    }
}
