package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.ExportStatistics;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.RequestStats;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * fuse-cache = page | direct on both transports: buffered fio verify passes through each; with the
 * page cache a repeated buffered read costs no request, with direct I/O every read reaches
 * blockfuse; a shared writable mmap works in both (direct mode needs FUSE_DIRECT_IO_ALLOW_MMAP).
 */
class CacheModeMountTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    private final RealExports rig = new RealExports();

    @AfterEach
    void unmount() throws Exception {
        rig.close();
    }

    @ParameterizedTest(name = "{0}, fuse-cache={1}")
    @CsvSource({"legacy, page", "legacy, direct", "io_uring, page", "io_uring, direct"})
    @Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void eachCacheModeKeepsTheBytesAndCachesAsItSays(String transport, String mode) throws Exception {
        RealExports.requireTool("fio");
        boolean direct = mode.equals("direct");
        Path image = RealExports.sparseImage(dir.resolve("c.raw"), 64 * MIB);
        RequestStats stats = new RequestStats(true);
        FuseExport e = rig.start("cache-" + mode, RealExports.raw(image), dir.resolve("c.img"),
                new ExportPolicy(true, false, true, 0, 0, false, direct), transport, Map.of(), stats);
        Path file = e.mountPoint();

        // buffered clients, each its own region, verified
        RealExports.Result fio = RealExports.run(150, "fio", "--name=c", "--filename=" + file, "--rw=randrw",
                "--rwmixread=50", "--bs=4k", "--direct=0", "--ioengine=psync", "--numjobs=2", "--size=16M",
                "--offset_increment=16M", "--verify=crc32c", "--verify_state_save=0", "--fsync=64",
                "--group_reporting", "--output-format=terse");
        assertEquals(0, fio.exit(), fio.output());

        // the same buffered 4 KiB read twice: page cache answers the second, direct I/O does not
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
            byte[] b = new byte[4096];
            f.seek(40L * MIB);
            f.readFully(b);
            ExportStatistics before = e.statistics();
            for (int i = 0; i < 5; i++) {
                f.seek(40L * MIB);
                f.readFully(b);
            }
            long reads = e.statistics().reads() - before.reads();
            if (direct) {
                assertEquals(5, reads, "direct I/O: every buffered read is a READ");
            } else {
                assertEquals(0, reads, "page cache: repeated reads are served by the kernel");
            }
        }
        // and the page cache survives a new open (FOPEN_KEEP_CACHE): reopening costs no READ
        ExportStatistics beforeReopen = e.statistics();
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
            byte[] b = new byte[4096];
            f.seek(40L * MIB);
            f.readFully(b);
        }
        assertEquals(direct ? 1 : 0, e.statistics().reads() - beforeReopen.reads(), "a read after reopening");

        // a shared writable mapping works and its bytes reach the image (in a child process, so the
        // mapping is gone when it exits: a JVM cannot unmap a MappedByteBuffer, which would hold the mount)
        RealExports.requireTool("python3");
        RealExports.Result mapped = RealExports.run(60, "python3", "-c", "import mmap, os, sys\n"
                + "fd = os.open(sys.argv[1], os.O_RDWR)\n"
                + "m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=48 << 20)\n"
                + "m[:] = bytes((i * 7) & 255 for i in range(4096))\n"
                + "m.flush(); m.close(); os.close(fd)\n", file.toString());
        assertEquals(0, mapped.exit(), "shared writable mmap: " + mapped.output());
        try (FileChannel img = FileChannel.open(image, StandardOpenOption.READ)) {
            java.nio.ByteBuffer back = java.nio.ByteBuffer.allocate(4096);
            img.read(back, 48L * MIB);
            for (int i = 0; i < 4096; i++) {
                assertEquals((byte) (i * 7), back.get(i), "mmap byte " + i + " in the image");
            }
        }
        assertTrue(rig.halts.isEmpty(), rig.halts.toString());
    }
}
