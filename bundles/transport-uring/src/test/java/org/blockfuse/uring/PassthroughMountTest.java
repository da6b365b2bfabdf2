package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.raw.RawBackendFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * FUSE passthrough through real mounts on both transports: opens are answered with the image as
 * backing file, after which reads and writes never reach the server (the request counter does not
 * move), bytes land in the image, a growable export grows and GETATTR follows, fio verify passes
 * through the passthrough path, and a read-only export stays read-only.
 */
class PassthroughMountTest {
    private static final int MIB = 1 << 20;
    private static final long SIZE = 16L * MIB;

    @TempDir
    Path dir;
    private final RealExports rig = new RealExports();

    @AfterEach
    void unmount() throws Exception {
        rig.close();
    }

    private FuseExport start(String transport, boolean writable, boolean growable) throws Exception {
        Path image = RealExports.sparseImage(dir.resolve("disk.raw"), SIZE);
        BlockBackend backend = new RawBackendFactory().open(new BackendRequest(image, writable, Map.of()));
        FuseExport e = rig.start("pt", backend, dir.resolve("disk"), new ExportPolicy(writable, growable, true, 0, 0, true),
                transport, Map.of());
        assertTrue(e.passthrough().startsWith("on"), "passthrough on this kernel as root: " + e.passthrough());
        return e;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void readsAndWritesGoStraightToTheImageAndAGrowableExportGrows(String transport) throws Exception {
        FuseExport e = start(transport, true, true);
        byte[] block = new byte[4096];
        new Random(7).nextBytes(block);
        try (RealExports.DirectFile f = new RealExports.DirectFile(e.mountPoint(), 4096)) {
            long before = e.requests();
            for (int i = 0; i < 1000; i++) {
                assertEquals(4096, f.write((long) (i % 256) * 4096, block));
                assertEquals(4096, f.read((long) (i % 256) * 4096, null, 4096));
            }
            long served = e.requests() - before;
            // each write makes the kernel drop privileges (file_remove_privs): a server that answers
            // GETXATTR would be asked for security.capability on every write (measured: 1000 requests
            // for 1000 writes when GETXATTR is answered ENODATA); ours answers ENOSYS once
            assertTrue(served < 20, "2000 reads and writes, " + served + " requests reached the server");
            // past the end: a growable export grows, and GETATTR follows the image
            assertEquals(4096, f.write(SIZE, block));
        }
        assertEquals(1, e.passthroughOpens());
        assertEquals(SIZE + 4096, Files.size(dir.resolve("disk.raw")));
        assertEquals(SIZE + 4096, Files.size(e.mountPoint()), "the file's size follows the grown image");
        byte[] back = new byte[4096];
        try (RandomAccessFile raw = new RandomAccessFile(dir.resolve("disk.raw").toFile(), "r")) {
            raw.seek(SIZE);
            raw.readFully(back);
        }
        assertArrayEquals(block, back, "the bytes are in the image");
        assertEquals(List.of(), rig.halts);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void fioVerifyPassesThroughThePassthroughPath(String transport) throws Exception {
        RealExports.requireTool("fio");
        FuseExport e = start(transport, true, true);
        long before = e.requests();
        RealExports.Result r = RealExports.run(120, "fio", "--name=pt", "--filename=" + e.mountPoint(), "--rw=randrw",
                "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=16", "--numjobs=4", "--size=4M",
                "--offset_increment=4M", "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0", "--group_reporting");
        assertEquals(0, r.exit(), r.output());
        assertTrue(r.output().contains("err= 0"), r.output());
        assertTrue(e.requests() - before < 200, "fio's I/O bypassed the server: " + (e.requests() - before) + " requests");
        assertTrue(e.passthroughOpens() >= 4);
    }

    /**
     * What an abort (the end of a drain grace, a halt) does to a passed-through open: nothing — its
     * reads and writes go to the image, not through the connection, until the client closes it.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aPassedThroughFileKeepsReadingAndWritingTheImageAfterItsConnectionIsAborted(String transport) throws Exception {
        FuseExport e = start(transport, true, true);
        byte[] block = new byte[4096];
        Arrays.fill(block, (byte) 7);
        try (RealExports.DirectFile f = new RealExports.DirectFile(e.mountPoint(), 4096)) {
            e.abort();
            assertEquals(4096, f.write(8192, block), "still writes");
            assertEquals(4096, f.read(8192, null, 4096), "still reads");
        }
        byte[] back = new byte[4096];
        try (RandomAccessFile raw = new RandomAccessFile(dir.resolve("disk.raw").toFile(), "r")) {
            raw.seek(8192);
            raw.readFully(back);
        }
        assertArrayEquals(block, back, "into the image itself");
        rig.halts.clear(); // the abort was ours
    }

    /** A fallback to a new connection registers the image there too; a file open across it keeps its old one. */
    @org.junit.jupiter.api.Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aHotSwapKeepsPassthroughOnTheNewConnection() throws Exception {
        FuseExport e = start(RealExports.URING, true, true);
        byte[] block = new byte[4096];
        Arrays.fill(block, (byte) 3);
        try (RealExports.DirectFile held = new RealExports.DirectFile(e.mountPoint(), 4096)) {
            e.replace(RealExports.transport(RealExports.LEGACY), 10_000);
            assertTrue(e.passthrough().startsWith("on"), "the new connection: " + e.passthrough());
            assertEquals(4096, held.write(0, block), "the file opened before the swap still writes");
            try (RealExports.DirectFile fresh = new RealExports.DirectFile(e.mountPoint(), 4096)) {
                byte[] back = new byte[4096];
                assertEquals(4096, fresh.read(0, back, 4096));
                assertArrayEquals(block, back);
            }
            assertEquals(1, e.passthroughOpens(), "the new open was passed through on the new connection");
        }
        assertTrue(e.awaitDrained(10_000));
        assertEquals(List.of(), rig.halts);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY})
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aReadOnlyExportStaysReadOnly(String transport) throws Exception {
        FuseExport e = start(transport, false, false);
        byte[] some = new byte[4096];
        Arrays.fill(some, (byte) 1);
        try (RandomAccessFile f = new RandomAccessFile(e.mountPoint().toFile(), "r")) {
            assertEquals(0, f.read()); // passed through: a hole reads as zero
        }
        assertThrows(java.io.IOException.class, () -> new RandomAccessFile(e.mountPoint().toFile(), "rw").close(),
                "opening for write is refused before any passthrough");
    }
}
