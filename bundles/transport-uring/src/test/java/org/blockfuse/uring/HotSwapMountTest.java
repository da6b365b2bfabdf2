package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.blockfuse.api.FuseTransport;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.MountTable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hot swap through real mounts (issue 9): io_uring to legacy needs a new connection, mounted
 * beneath the old one at the same path; files open on the old one keep working on it until closed
 * (or cut off cleanly at the end of the grace); legacy to io_uring joins the live connection.
 * Under fio load with crc32c verification across repeated swaps nothing is lost.
 */
class HotSwapMountTest {
    private static final int MIB = 1 << 20;
    private static final long SIZE = 64L * MIB;
    private static final int BLOCK = 4096;

    @TempDir
    Path dir;
    private final RealExports rig = new RealExports();

    @AfterEach
    void unmount() throws Exception {
        rig.close();
        assertTrue(MountTable.find(dir.resolve("disk")).isEmpty(), "nothing left mounted");
    }

    private FuseExport start() throws Exception {
        FuseExport e = rig.start("swap", RealExports.raw(RealExports.sparseImage(dir.resolve("disk.raw"), SIZE)),
                dir.resolve("disk"), false, RealExports.URING, Map.of("queue-depth", "16"));
        assertEquals(RealExports.URING, e.session().transport());
        return e;
    }

    private static byte[] block(String text) {
        byte[] b = Arrays.copyOf(text.getBytes(StandardCharsets.US_ASCII), BLOCK);
        return b;
    }

    private static String text(byte[] b) {
        int end = 0;
        while (end < b.length && b[end] != 0) {
            end++;
        }
        return new String(b, 0, end, StandardCharsets.US_ASCII);
    }

    private static int deviceMinor(Path p) throws Exception {
        long dev = ((Number) Files.getAttribute(p, "unix:dev")).longValue();
        return (int) ((dev & 0xff) | ((dev >> 12) & 0xfff00)); // Linux's minor() of a dev_t
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void openFilesStayOnTheOldConnectionUntilClosedAndNewOpensReachTheNewOne() throws Exception {
        FuseExport e = start();
        Path file = e.mountPoint();
        byte[] buf = new byte[BLOCK];
        try (RealExports.DirectFile held = new RealExports.DirectFile(file, BLOCK)) {
            assertEquals(BLOCK, held.write(0, block("before the switch")));
            int oldConnection = e.connectionId();

            FuseExport.Replacement r = e.replace(RealExports.transport(RealExports.LEGACY), 20_000);
            assertEquals(oldConnection, r.oldConnection());
            assertNotEquals(oldConnection, r.newConnection());
            assertEquals(RealExports.LEGACY, e.session().transport());
            assertEquals(1, e.draining(), "the old connection drains while a file is open on it");
            assertEquals(r.newConnection(), deviceMinor(file), "a new lookup reaches the new connection at once");

            // the file opened before keeps working, on the old connection and its io_uring transport
            assertEquals(BLOCK, held.write(BLOCK, block("written through the old connection")));
            assertEquals(BLOCK, held.read(0, buf, BLOCK));
            assertEquals("before the switch", text(buf));
            try (RealExports.DirectFile fresh = new RealExports.DirectFile(file, BLOCK)) {
                assertEquals(BLOCK, fresh.read(BLOCK, buf, BLOCK));
                assertEquals("written through the old connection", text(buf), "one image behind both connections");
                assertEquals(BLOCK, fresh.write(2 * BLOCK, block("written through the new connection")));
            }
            assertEquals(BLOCK, held.read(2 * BLOCK, buf, BLOCK));
            assertEquals("written through the new connection", text(buf));
        }
        assertTrue(e.awaitDrained(10_000), "closing the last old file ends the old connection");
        assertEquals(0, e.cutOff());
        assertEquals(List.of(), rig.halts);
        assertEquals(1, MountTable.anonymousMinors().stream().filter(m -> m == e.connectionId()).count());
        assertEquals(0, e.waiting());
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void withNoFileOpenTheOldConnectionEndsAtOnceAndLeavesNothingBehind() throws Exception {
        FuseExport e = start();
        int old = e.connectionId();
        e.replace(RealExports.transport(RealExports.LEGACY), 20_000);
        assertTrue(e.awaitDrained(10_000), "nothing holds the old connection open");
        Path fusectl = Path.of("/sys/fs/fuse/connections/" + old);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (Files.exists(fusectl) && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertFalse(Files.exists(fusectl), "the kernel let go of connection " + old);
        assertFalse(MountTable.anonymousMinors().contains(old));
        assertEquals(0, e.cutOff());
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFileHeldPastTheGraceGetsACleanErrorNotAHang() throws Exception {
        FuseExport e = start();
        try (RealExports.DirectFile held = new RealExports.DirectFile(e.mountPoint(), BLOCK)) {
            assertEquals(BLOCK, held.write(0, block("kept")));
            long started = System.nanoTime();
            e.replace(RealExports.transport(RealExports.LEGACY), 1_000);
            assertTrue(e.awaitDrained(20_000), "the old connection is cut off after the grace");
            assertTrue(System.nanoTime() - started >= TimeUnit.MILLISECONDS.toNanos(1_000), "not before the grace");
            assertEquals(1, e.cutOff());
            long r = CompletableFuture.supplyAsync(() -> held.read(0, null, BLOCK)).get(10, TimeUnit.SECONDS);
            assertTrue(r < 0, "a read on the cut-off connection fails (got " + r + ")");
        }
        byte[] buf = new byte[BLOCK];
        try (RealExports.DirectFile fresh = new RealExports.DirectFile(e.mountPoint(), BLOCK)) {
            assertEquals(BLOCK, fresh.read(0, buf, BLOCK));
            assertEquals("kept", text(buf), "the new connection serves the same bytes");
        }
        assertEquals(List.of(), rig.halts, "cutting off a replaced connection does not halt the export");
    }

    /**
     * fio runs one short verified randrw job after another (each opens the file afresh, as a VM
     * restarting or a backup tool would), while the export swaps io_uring -> legacy (new connection)
     * and legacy -> io_uring (live) over and over: every fio run must succeed and verify.
     */
    @Test
    @Timeout(value = 240, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void verifiedFioAcrossRepeatedSwapsLosesNothing() throws Exception {
        RealExports.requireTool("fio");
        FuseExport e = start();
        FuseTransport legacy = RealExports.transport(RealExports.LEGACY);
        FuseTransport uring = RealExports.transport(RealExports.URING);
        AtomicBoolean stop = new AtomicBoolean();
        List<String> failures = new ArrayList<>();
        int[] runs = {0};
        Thread load = new Thread(() -> {
            try {
                while (!stop.get()) {
                    RealExports.Result r = RealExports.run(60, "fio", "--name=swap", "--filename=" + e.mountPoint(),
                            "--rw=randrw", "--rwmixread=70", "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=16",
                            "--numjobs=4", "--size=4M", "--offset_increment=8M", "--verify=crc32c", "--verify_fatal=1",
                            "--verify_state_save=0", "--group_reporting");
                    runs[0]++;
                    if (r.exit() != 0 || r.output().contains("verify") && r.output().contains("bad")) {
                        synchronized (failures) {
                            failures.add(r.output());
                        }
                        return;
                    }
                }
            } catch (Exception ex) {
                synchronized (failures) {
                    failures.add(ex.toString());
                }
            }
        }, "fio-loop");
        load.start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (e.requests() < 2000 && System.nanoTime() < deadline) {
                Thread.sleep(10); // polls for the load to arrive
            }
            for (int i = 0; i < 5 && load.isAlive(); i++) {
                e.replace(legacy, 30_000);
                assertEquals(RealExports.LEGACY, e.session().transport());
                assertTrue(e.awaitDrained(45_000), "swap " + i + ": the old connection drained");
                e.join(uring);
                assertEquals(RealExports.URING, e.session().transport());
                long served = e.requests();
                while (e.requests() < served + 1000 && load.isAlive()) {
                    Thread.sleep(10); // polls until the live connection served more over the rings
                }
            }
        } finally {
            stop.set(true);
            load.join(90_000);
        }
        synchronized (failures) {
            assertEquals(List.of(), failures, "every fio run succeeded and verified");
        }
        assertTrue(runs[0] >= 2, "fio ran across the swaps (" + runs[0] + " runs)");
        assertEquals(0, e.cutOff(), "each old connection drained when fio closed its file, none was cut off");
        assertEquals(0, e.waiting(), "nothing left waiting on the serving connection");
        assertEquals(List.of(), rig.halts);
    }
}
