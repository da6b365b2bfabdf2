package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.MountTable;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.raw.RawBackendFactory;
import org.blockfuse.uring.internal.QueueMemory;
import org.blockfuse.uring.internal.UringSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real mounts served over FUSE-over-io_uring (root, Linux 6.14+ with enable_uring=Y; skipped
 * otherwise). Every test unmounts in finally; a stuck mount is detached and its connection aborted.
 */
class UringMountTest {
    private static final Path ENABLE_URING = Path.of("/sys/module/fuse/parameters/enable_uring");

    @TempDir
    Path dir;
    private final List<FuseExport> exports = new ArrayList<>();
    private final List<UringSession> sessions = new ArrayList<>();
    private long fdsBefore;
    private long mapsBefore;

    /** Strict by default: a missing capability fails; -Dblockfuse.tests.lenient=true skips instead. */
    static void require(boolean available, String cause) {
        if (Boolean.getBoolean("blockfuse.tests.lenient")) {
            assumeTrue(available, cause);
        } else if (!available) {
            throw new AssertionError("missing capability: " + cause + " (run with -Dblockfuse.tests.lenient=true to skip)");
        }
    }

    @BeforeEach
    void needsRootAndRings() throws IOException {
        var a = new UringTransport().availability();
        require(Libc.geteuid() == 0, "mounting needs root");
        require(a.available(), "io_uring transport: " + a.reason());
        fdsBefore = openFds();
        mapsBefore = mappingCount();
    }

    @AfterEach
    void unmountEverything() throws IOException {
        for (FuseExport e : exports) {
            try {
                e.close();
            } finally {
                if (MountTable.find(e.mountPoint()).isPresent()) {
                    Libc.umount2(e.mountPoint().toString(), Libc.MNT_DETACH);
                    e.abort();
                }
            }
        }
    }

    private FuseExport export(int megabytes, Map<String, String> options) throws IOException {
        Path image = dir.resolve("disk" + exports.size() + ".raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength((long) megabytes << 20);
        }
        Path target = dir.resolve("export" + exports.size() + ".img");
        FuseExport e = FuseExport.start("ut" + exports.size(),
                new RawBackendFactory().open(new BackendRequest(image, true, Map.of())), target,
                new ExportPolicy(true, false, true, 0, 0), image.toString(), options, new UringTransport(),
                reason -> { });
        exports.add(e);
        sessions.add(session(e));
        return e;
    }

    private static UringSession session(FuseExport e) {
        return (UringSession) e.session();
    }

    @Test
    void patternsGoOverTheRingsAndReachTheImage() throws Exception {
        FuseExport e = export(64, Map.of("queue-depth", "8"));
        Path image = dir.resolve("disk0.raw");
        assertTrue(e.session().describe().startsWith(UringConfigShape.queues() + " queues x 8 entries"),
                e.session().describe());
        Random rnd = new Random(42);
        long[][] writes = {{0, 4096}, {4096 * 3 + 17, 1}, {(1 << 20) - 100, 300}, {5 << 20, 3 << 20},
                {(64 << 20) - 4096, 4096}, {12345678, 65536 + 7}};
        List<byte[]> data = new ArrayList<>();
        try (FileChannel ch = FileChannel.open(e.mountPoint(), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            for (long[] w : writes) {
                byte[] b = new byte[(int) w[1]];
                rnd.nextBytes(b);
                data.add(b);
                assertEquals(b.length, ch.write(ByteBuffer.wrap(b), w[0]));
            }
            ch.force(false);
            for (int i = 0; i < writes.length; i++) {
                ByteBuffer back = ByteBuffer.allocate((int) writes[i][1]);
                while (back.hasRemaining() && ch.read(back, writes[i][0] + back.position()) > 0) {
                }
                assertArrayEquals(data.get(i), back.array(), "pattern " + i);
            }
        }
        // O_DIRECT bypasses the page cache: every 4 KiB request travels to us
        ddDirect(e.mountPoint(), 32);
        long viaRings = session(e).requestsServed();
        assertTrue(viaRings > 32, "requests served over the rings: " + viaRings);
        assertTrue(viaRings <= e.requests());
        close(e);
        byte[] raw = Files.readAllBytes(image);
        for (int i = 0; i < writes.length; i++) {
            for (int j = 0; j < writes[i][1]; j++) {
                if (data.get(i)[j] != raw[(int) writes[i][0] + j]) {
                    fail("pattern " + i + " byte " + j + " did not reach the image");
                }
            }
        }
        assertNothingLeft();
    }

    @Test
    void fioVerifiesThroughWorkersAndInline() throws Exception {
        // offload-threshold-us=0: batches always go to the workers, so both paths carry traffic
        FuseExport e = export(128, Map.of("queue-depth", "16", "offload-threshold-us", "0"));
        Process fio = fio(e.mountPoint(), "--rw=randrw", "--rwmixread=50", "--numjobs=4", "--iodepth=16",
                "--size=32M", "--offset_increment=32M", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--verify_state_save=0");
        String out = RealExports.finish(fio, 120);
        assertEquals(0, fio.exitValue(), out);
        assertTrue(out.contains("err= 0"), out);
        assertFalse(out.contains("verify: bad"), out);
        assertTrue(session(e).requestsOffloaded() > 0, "the workers served requests");
        assertTrue(session(e).requestsServed() > 10_000, "served " + session(e).requestsServed());
        close(e);
        assertNothingLeft();
    }

    @Test
    void slowBackendKeepsManyRequestsInFlightOnOneQueue() throws Exception {
        // every backend I/O takes 1 ms: one fio thread at QD 32 (so all on one CPU's queue) gets at
        // most 1000 IOPS if the queue serialises on its backend, ~30x more if requests go to workers
        Path image = dir.resolve("slow.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(64 << 20);
        }
        Path target = dir.resolve("slow.img");
        FuseExport e = FuseExport.start("slow", new SlowBackend(new RawBackendFactory().open(
                new BackendRequest(image, true, Map.of())), 1_000_000), target, new ExportPolicy(true, false, true, 0, 0),
                image.toString(), Map.of("queue-depth", "32"), new UringTransport(), reason -> { });
        exports.add(e);
        sessions.add(session(e));
        Process fio = fio(target, "--rw=randrw", "--numjobs=1", "--iodepth=32", "--size=64M", "--time_based",
                "--runtime=4", "--cpus_allowed=0");
        String out = RealExports.finish(fio, 60);
        assertEquals(0, fio.exitValue(), out);
        long served = session(e).requestsServed();
        long offloaded = session(e).requestsOffloaded();
        System.out.println("slow backend, QD 32 on one queue: " + served + " requests in 4 s, " + offloaded + " by workers");
        assertTrue(offloaded > served / 2, "most requests went to workers: " + offloaded + " of " + served);
        assertTrue(served > 4 * 1000 * 4, "served " + served + " in 4 s: more than 4x the serial limit");
        close(e);
        assertNothingLeft();
    }

    @Test
    void unmountUnderLoadEndsClientsAndFreesEverything() throws Exception {
        FuseExport e = export(128, Map.of("queue-depth", "16", "offload-threshold-us", "0"));
        Process fio = fio(e.mountPoint(), "--rw=randrw", "--numjobs=4", "--iodepth=16", "--size=128M",
                "--time_based", "--runtime=120");
        Thread.sleep(3000);
        assertTrue(fio.isAlive(), "fio runs");
        long served = session(e).requestsServed();
        assertTrue(served > 1000, "load reached the rings: " + served);
        // the export's own stop: unmount (busy → detach), drain for a while, then abort
        CompletableFuture<Void> closing = CompletableFuture.runAsync(e::close);
        String out = RealExports.finish(fio, 60);
        closing.get(60, TimeUnit.SECONDS);
        assertNotEquals(0, fio.exitValue(), "fio saw the connection end: " + out);
        assertFalse(MountTable.find(e.mountPoint()).isPresent());
        assertNothingLeft();
    }

    @Test
    void abortUnderLoadDrainsEveryEntry() throws Exception {
        FuseExport e = export(64, Map.of("queue-depth", "16", "offload-threshold-us", "0"));
        Process fio = fio(e.mountPoint(), "--rw=randrw", "--numjobs=4", "--iodepth=16", "--size=64M",
                "--time_based", "--runtime=120");
        Thread.sleep(2000);
        e.abort();
        String out = RealExports.finish(fio, 30);
        assertNotEquals(0, fio.exitValue(), out);
        assertTrue(e.session().awaitStopped(10_000), "every queue thread ended after the abort");
        close(e);
        assertNothingLeft();
    }

    /** The CPUs each ring thread of this JVM may run on (/proc/self/task/N/status), e.g. "0" or "0-1". */
    private static List<String> ringThreadCpus() throws IOException {
        List<String> cpus = new ArrayList<>();
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : tasks.toList()) {
                try {
                    if (Files.readString(t.resolve("comm")).trim().equals("blockfuse-uring")) { // names cut at 15
                        Files.readAllLines(t.resolve("status")).stream().filter(l -> l.startsWith("Cpus_allowed_list:"))
                                .map(l -> l.substring(18).trim()).forEach(cpus::add);
                    }
                } catch (IOException gone) {
                    // the thread ended meanwhile
                }
            }
        }
        return cpus;
    }

    /**
     * pin-cpus=auto (the default): every ring thread stays on its CPU while requests come one at a
     * time, and the busy queue's thread leaves it while one job keeps 64 requests in flight.
     */
    @Test
    void ringThreadsStayOnTheirCpuWhileShallowAndMayLeaveItWhileDeep() throws Exception {
        require(Runtime.getRuntime().availableProcessors() > 1, "pinning means something with more than one CPU");
        FuseExport e = export(64, Map.of("queue-depth", "16"));
        Process shallow = fio(e.mountPoint(), "--rw=randread", "--numjobs=1", "--iodepth=1", "--size=64M",
                "--time_based", "--runtime=2");
        long served = e.requests();
        while (e.requests() < served + 2000 && shallow.isAlive()) {
            Thread.sleep(10); // polls until the shallow load is being served
        }
        List<String> atQd1 = ringThreadCpus();
        RealExports.finish(shallow, 60);
        assertFalse(atQd1.isEmpty(), "ring threads found");
        assertTrue(atQd1.stream().allMatch(c -> c.matches("\\d+")), "each on one CPU at QD 1: " + atQd1);

        Process deep = fio(e.mountPoint(), "--rw=randread", "--numjobs=1", "--iodepth=64", "--size=64M",
                "--time_based", "--runtime=3");
        List<String> seen = List.of();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
        while (System.nanoTime() < deadline && deep.isAlive()) {
            seen = ringThreadCpus();
            if (seen.stream().anyMatch(c -> !c.matches("\\d+"))) {
                break;
            }
            Thread.sleep(20); // polls for the busy queue's thread to leave its CPU
        }
        RealExports.finish(deep, 60);
        assertTrue(seen.stream().anyMatch(c -> !c.matches("\\d+")), "a ring thread left its CPU at QD 64: " + seen);
    }

    @Test
    void switchedOffModuleParameterMeansUnavailable() throws Exception {
        String before = Files.readString(ENABLE_URING).trim();
        try {
            Files.writeString(ENABLE_URING, "N");
            FuseTransport t = new UringTransport();
            assertFalse(t.availability().available());
            assertTrue(t.availability().reason().contains("enable_uring"), t.availability().reason());
            assertEquals(20, t.rank());
            IOException thrown = assertThrows(IOException.class, () -> {
                FuseExport x = FuseExport.start("off", new RawBackendFactory().open(new BackendRequest(
                        dir.resolve("off.raw"), true, Map.of("create", "1M"))), dir.resolve("off.img"),
                        new ExportPolicy(true, false, true, 0, 0), "off", Map.of(), t, reason -> { });
                exports.add(x);
            });
            assertTrue(thrown.getMessage().contains("unavailable"), thrown.getMessage());
            assertFalse(MountTable.find(dir.resolve("off.img")).isPresent());
        } finally {
            Files.writeString(ENABLE_URING, before.equals("N") ? "N" : "Y");
        }
        assertEquals("Y", Files.readString(ENABLE_URING).trim());
    }

    // ---- helpers

    private void close(FuseExport e) {
        e.close();
        exports.remove(e);
    }

    private static void ddDirect(Path file, int blocks) throws Exception {
        Process p = new ProcessBuilder("dd", "if=" + file, "of=/dev/null", "bs=4k", "count=" + blocks, "iflag=direct")
                .redirectErrorStream(true).start();
        String out = RealExports.finish(p, 30);
        assertEquals(0, p.exitValue(), out);
    }

    private static Process fio(Path file, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("fio", "--name=t", "--filename=" + file, "--bs=4k",
                "--ioengine=libaio", "--direct=1", "--group_reporting"));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).start();
    }


    private void assertNothingLeft() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        List<String> threads;
        do {
            threads = Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
                    .filter(n -> n.startsWith("blockfuse-uring-")).collect(Collectors.toList());
        } while (!threads.isEmpty() && System.nanoTime() < deadline && sleep());
        if (!threads.isEmpty()) {
            StringBuilder sb = new StringBuilder();
            Thread.getAllStackTraces().forEach((t, st) -> {
                if (t.getName().startsWith("blockfuse-uring-") && !t.getName().contains("-w")) {
                    sb.append(t.getName()).append('\n');
                    for (StackTraceElement el : st) {
                        sb.append("    ").append(el).append('\n');
                    }
                }
            });
            System.err.println(sb);
            for (UringSession us : sessions) {
                System.err.println("STATE " + us.state());
            }
        }
        assertEquals(List.of(), threads, "io_uring threads left");
        assertEquals(fdsBefore, openFds(), "file descriptors left: " + fdList());
        assertEquals(mapsBefore, mappingCount(), "queue memory left mapped");
    }

    private static boolean sleep() {
        try {
            Thread.sleep(50);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return true;
    }

    /**
     * Open fds of the kinds an export owns: /dev/fuse and its clones, eventfds and rings
     * (anon_inode), images and mountpoints. Not every fd of the JVM: the JVM may open a socket or a
     * jar of its own at any time (e.g. its attach listener when a tool attaches), which is no leak of ours.
     */
    private static long openFds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(fd -> {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    return target.equals("/dev/fuse") || target.startsWith("anon_inode:") || target.startsWith("/tmp/")
                            || target.startsWith("/dev/shm/") || target.startsWith("/var/tmp/");
                } catch (IOException gone) {
                    return false; // closed while listed (e.g. the listing's own directory fd)
                }
            }).count();
        }
    }

    private static String fdList() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.map(p -> {
                try {
                    return p.getFileName() + "->" + Files.readSymbolicLink(p);
                } catch (IOException e) {
                    return p.getFileName() + "->?";
                }
            }).collect(Collectors.joining(", "));
        }
    }

    /** Anonymous mappings of exactly the size of a queue's memory (1 MiB payloads, depth 8 or 16). */
    private static long mappingCount() throws IOException {
        long a = QueueMemory.bytesFor(8, 1 << 20);
        long b = QueueMemory.bytesFor(16, 1 << 20);
        long c = QueueMemory.bytesFor(32, 1 << 20);
        try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(l -> {
                String[] range = l.substring(0, l.indexOf(' ')).split("-");
                long size = Long.parseUnsignedLong(range[1], 16) - Long.parseUnsignedLong(range[0], 16);
                return size == a || size == b || size == c;
            }).count();
        }
    }

    /** Expected queue count, read the same way the transport does. */
    static final class UringConfigShape {
        static int queues() throws IOException {
            return org.blockfuse.uring.internal.UringConfig.possibleCpus();
        }
    }
}
