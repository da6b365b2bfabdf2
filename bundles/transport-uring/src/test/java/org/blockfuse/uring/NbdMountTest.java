package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nbd.NbdServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * NBD disks exported as a file through a real mount, on both transports: fio verify over a disk
 * served by qemu-nbd reaches the served file byte for byte; SEEK_DATA/SEEK_HOLE on the mount agree
 * with {@code qemu-img map} of the served image; a server killed under fio and started again loses
 * nothing; a server away past reconnect-timeout gives the client EIO and the export stays up.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class NbdMountTest {
    private static final int MIB = 1 << 20;
    @TempDir
    Path dir;
    private final RealExports rig = new RealExports();

    @AfterEach
    void unmount() throws Exception {
        rig.close();
    }

    private FuseExport mount(String name, String uri, boolean writable, String transport, String... options)
            throws Exception {
        BlockBackend b = NbdServer.open(uri, writable, options);
        return rig.start(name, b, dir.resolve(name + ".img"), new ExportPolicy(writable, false, true, 0, 0), transport,
                Map.of());
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    void fioVerifyReachesTheServedFile(String transport) throws Exception {
        RealExports.transport(transport);
        RealExports.requireTool("fio");
        Path image = RealExports.sparseImage(dir.resolve("served.raw"), 64 * MIB);
        try (NbdServer s = NbdServer.qemuNbd(dir, "--format=raw", "--shared=8", "--cache=none", image.toString())) {
            FuseExport e = mount("nbd-" + transport, s.uri(), true, transport);
            Path file = e.mountPoint();
            RealExports.Result fio = RealExports.run(150, "fio", "--name=n", "--filename=" + file, "--rw=randrw",
                    "--rwmixread=50", "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=16", "--numjobs=2",
                    "--size=16M", "--offset_increment=16M", "--verify=crc32c", "--verify_state_save=0",
                    "--group_reporting", "--output-format=terse");
            assertEquals(0, fio.exit(), fio.output());
            byte[] chunk = new byte[MIB];
            new Random(1).nextBytes(chunk);
            Files.write(file, chunk, StandardOpenOption.WRITE); // at offset 0, through the mount
            rig.close(e);
            assertArrayEquals(chunk, Arrays.copyOf(Files.readAllBytes(image), MIB), "the mount's write is in the served file");
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    void seekDataAndHoleMatchQemuImgMap(String transport) throws Exception {
        RealExports.transport(transport);
        Path image = RealExports.sparseImage(dir.resolve("sparse.raw"), 32 * MIB);
        byte[] data = new byte[512 * 1024];
        new Random(2).nextBytes(data);
        try (FileChannel f = FileChannel.open(image, StandardOpenOption.WRITE)) {
            for (long at : new long[] {MIB, 5 * MIB + 512 * 1024, 20 * MIB}) {
                f.write(ByteBuffer.wrap(data), at);
            }
        }
        try (NbdServer s = NbdServer.qemuNbd(dir, "--format=raw", "--shared=8", "--read-only", image.toString())) {
            List<String> want = new ArrayList<>();
            RealExports.Result map = RealExports.run(60, "qemu-img", "map", "--output=json", s.uri());
            assertEquals(0, map.exit(), map.output());
            Matcher m = Pattern.compile("\"start\": (\\d+), \"length\": (\\d+),[^}]*\"data\": true").matcher(map.output());
            while (m.find()) {
                want.add(m.group(1) + "+" + m.group(2));
            }
            assertEquals(3, want.size(), map.output());
            FuseExport e = mount("seek-" + transport, s.uri(), false, transport);
            int fd = Libc.open(e.mountPoint().toString(), Libc.O_RDONLY, 0);
            List<String> ours = new ArrayList<>();
            try {
                long pos = 0;
                for (;;) {
                    long start = Libc.lseek(fd, pos, Libc.SEEK_DATA);
                    if (start == -Errno.ENXIO) {
                        break;
                    }
                    assertTrue(start >= 0, "SEEK_DATA from " + pos + ": " + start);
                    long end = Libc.lseek(fd, start, Libc.SEEK_HOLE);
                    assertTrue(end > start, "SEEK_HOLE from " + start + ": " + end);
                    ours.add(start + "+" + (end - start));
                    pos = end;
                }
            } finally {
                Libc.close(fd);
            }
            assertEquals(want, ours, "SEEK_DATA/SEEK_HOLE through the mount, against qemu-img map");
            assertArrayEquals(Files.readAllBytes(image), Files.readAllBytes(e.mountPoint()), "every byte");
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    void serverKilledUnderFioComesBackAndNothingIsLost(String transport) throws Exception {
        RealExports.transport(transport);
        RealExports.requireTool("fio");
        Path image = RealExports.sparseImage(dir.resolve("file.raw"), 32 * MIB);
        try (NbdServer s = NbdServer.nbdkit(dir, "file", image.toString())) {
            FuseExport e = mount("restart-" + transport, s.uri(), true, transport, "reconnect-timeout", "30");
            Process fio = new ProcessBuilder("fio", "--name=r", "--filename=" + e.mountPoint(), "--rw=randwrite",
                    "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=8", "--numjobs=2", "--size=8M",
                    "--offset_increment=8M", "--verify=crc32c", "--verify_state_save=0", "--do_verify=1",
                    "--loops=6", "--group_reporting", "--output-format=terse").redirectErrorStream(true).start();
            try {
                // kill the server while fio writes, then bring it back
                waitUntil(() -> e.statistics().writes() > 500, "fio is writing");
                s.kill();
                long writes = e.statistics().writes();
                waitUntil(() -> e.backend().describeConnection().contains("requests waiting"), "requests wait for the server");
                s.start();
                waitUntil(() -> e.statistics().writes() > writes + 500, "fio writes again");
                String out = RealExports.finish(fio, 150);
                assertEquals(0, fio.exitValue(), "fio verify after the restart: " + out);
            } finally {
                fio.destroyForcibly();
            }
            assertTrue(rig.halts.isEmpty(), rig.halts.toString());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    void serverAwayPastTheWindowIsEioAndTheExportStays(String transport) throws Exception {
        RealExports.transport(transport);
        Path image = RealExports.sparseImage(dir.resolve("away.raw"), 8 * MIB);
        try (NbdServer s = NbdServer.nbdkit(dir, "file", image.toString())) {
            FuseExport e = mount("away-" + transport, s.uri(), true, transport, "reconnect-timeout", "1",
                    "connect-timeout", "1");
            try (RealExports.DirectFile f = new RealExports.DirectFile(e.mountPoint(), MIB)) {
                byte[] d = new byte[4096];
                new Random(3).nextBytes(d);
                assertEquals(4096, f.write(0, d));
                s.kill();
                assertEquals(-Errno.EIO, f.read(0, null, 4096), "the server stayed away past reconnect-timeout");
                s.start();
                waitUntil(() -> e.backend().describeConnection().matches(".*: (\\d+) of \\1 connections up.*"),
                        "reconnected: " + e.backend().describeConnection());
                byte[] got = new byte[4096];
                assertEquals(4096, f.read(0, got, 4096));
                assertArrayEquals(d, got, "the same file, the same bytes, after the server came back");
            }
            assertTrue(rig.halts.isEmpty(), rig.halts.toString());
        }
    }

    interface Condition {
        boolean holds() throws Exception;
    }

    private static void waitUntil(Condition c, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!c.holds()) {
            if (System.nanoTime() > deadline) {
                fail("not within 60 s: " + what);
            }
            Thread.sleep(20);
        }
    }
}
