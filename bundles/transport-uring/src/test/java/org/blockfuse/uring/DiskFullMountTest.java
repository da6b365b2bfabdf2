package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.MountTable;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Fault suite, disk full (issue 8, 3.4), on both transports: the image of a writable, growable
 * export lives on an 8 MiB tmpfs. Writes past the space get ENOSPC ("No space left on device"),
 * direct and buffered; no I/O error is counted for them; the data written before is intact; the
 * export stays up, serves reads, and takes writes again once space is freed (a punched hole).
 */
class DiskFullMountTest {
    private static final int MIB = 1 << 20;
    private static final int EARLIER = 3 * MIB;

    @TempDir
    Path dir;
    private final RealExports rig = new RealExports();
    private Path tmpfs;

    @AfterEach
    void unmount() throws Exception {
        try {
            rig.close();
        } finally {
            if (tmpfs != null && MountTable.find(tmpfs).isPresent()) {
                if (Libc.umount2(tmpfs.toString(), 0) != 0) {
                    Libc.umount2(tmpfs.toString(), Libc.MNT_DETACH);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void fullHostDiskGivesEnospcAndKeepsEarlierData(String transport) throws Exception {
        RealExports.transport(transport);
        RealExports.requireTool("dd");
        tmpfs = Files.createDirectory(dir.resolve("small"));
        Libc.mount("tmpfs", tmpfs.toString(), "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV, "size=8m,mode=0700");
        assertTrue(MountTable.find(tmpfs).isPresent(), "tmpfs mounted");
        Path image = RealExports.sparseImage(tmpfs.resolve("disk.raw"), MIB);
        FuseExport e = rig.start("full-" + transport, RealExports.raw(image), dir.resolve("full.img"), true,
                transport, Map.of());
        Path file = e.mountPoint();

        byte[] earlier = new byte[EARLIER];
        new Random(4).nextBytes(earlier);
        byte[] more = new byte[MIB];
        new Random(5).nextBytes(more);
        try (RealExports.DirectFile f = new RealExports.DirectFile(file, MIB)) {
            // earlier data, growing the export from 1 to 3 MiB, made durable
            for (int off = 0; off < EARLIER; off += MIB) {
                assertEquals(MIB, f.write(off, Arrays.copyOfRange(earlier, off, off + MIB)), "write at " + off);
            }
            f.fsync();
            assertEquals(EARLIER, Files.size(file));

            // fill the disk: direct, then buffered writes; each stops with ENOSPC
            RealExports.Result dd = RealExports.run(60, "dd", "if=/dev/urandom", "of=" + file, "bs=1M",
                    "seek=" + (EARLIER / MIB), "count=16", "oflag=direct", "conv=notrunc");
            assertNotEquals(0, dd.exit(), dd.output());
            assertTrue(dd.output().contains("No space left on device"), dd.output());
            dd = RealExports.run(60, "dd", "if=/dev/urandom", "of=" + file, "bs=64k", "seek=" + (32 * MIB / (64 << 10)),
                    "count=16", "conv=notrunc,fsync");
            assertNotEquals(0, dd.exit(), dd.output());
            assertTrue(dd.output().contains("No space left on device"), dd.output());
            assertEquals(-Errno.ENOSPC, f.write(24L * MIB, more), "pwrite on a full disk");
            assertEquals(0, e.ioErrors(), "a full disk is not an I/O error");

            // earlier data intact, read through the mount
            byte[] got = new byte[MIB];
            for (int off = 0; off < EARLIER; off += MIB) {
                assertEquals(MIB, f.read(off, got, MIB), "read at " + off);
                assertArrayEquals(Arrays.copyOfRange(earlier, off, off + MIB), got, "earlier data at " + off);
            }

            // still up: the same mount answers anywhere in the file, nothing halted
            assertEquals(List.of(), rig.halts);
            assertTrue(MountTable.find(file).isPresent(), "still mounted");
            long size = Files.size(file);
            assertTrue(size >= EARLIER, "size " + size);
            System.out.println(transport + ": size after the failed writes " + size + " bytes");
            assertEquals(MIB, f.read(size - MIB, got, MIB), "read at the end");

            // freeing space (a hole after the earlier data) makes writes work again
            assertEquals(0, f.fallocate(Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, EARLIER, size - EARLIER));
            assertEquals(MIB, f.write(EARLIER, more), "write after space was freed");
            f.fsync();
            assertEquals(MIB, f.read(EARLIER, got, MIB));
            assertArrayEquals(more, got);
            assertEquals(0, e.ioErrors());
        }
        rig.close(e);
        byte[] onDisk = Files.readAllBytes(image);
        assertArrayEquals(earlier, Arrays.copyOfRange(onDisk, 0, EARLIER), "earlier data in the image");
        assertArrayEquals(more, Arrays.copyOfRange(onDisk, EARLIER, EARLIER + MIB), "the write after freeing space");
    }
}
