package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import javax.management.ObjectName;

import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.MountTable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Fault suite, soak (issue 8, 3.6), per transport: fio randrw, 4 jobs x QD 64, bs 4k, O_DIRECT,
 * libaio, crc32c verify, each job on its own 64 MiB region, time-based, against an export with
 * default options served by this JVM. Zero errors, and this JVM's resources stay flat while fio
 * runs: sampled first after the warm-up ({@code min(120 s, duration / 3)} from fio's first requests,
 * so minute 2 of the long run), then every warm-up period and once more shortly before fio stops.
 * Flat means:
 * <ul>
 * <li>open fds (/proc/self/fd) identical to the first sample;</li>
 * <li>blockfuse threads (named blockfuse-*) identical; all threads (/proc/self/status Threads)
 *     within {@value #THREAD_SLACK} more, for the JVM's own on-demand compiler and GC threads;</li>
 * <li>RSS outside the Java heap at most {@value #RSS_SLACK_MIB} MiB above the first sample, and the
 *     heap still live after a full GC at most {@value #LIVE_HEAP_SLACK_MIB} MiB above it. (The
 *     whole VmRSS is printed too; its heap share follows G1's sizing, which moved it by 40 MiB
 *     within 40 s with a constant 7 MiB live heap.)</li>
 * </ul>
 * 60 s per transport by default; the documented long run is 10 minutes:
 * {@code mvn -B -o -pl bundles/transport-uring test -Dtest=SoakMountTest -Dblockfuse.soak.seconds=600}.
 * Every sample is printed (surefire keeps it in the system-out of TEST-...SoakMountTest.xml).
 */
class SoakMountTest {
    static final String SECONDS_PROPERTY = "blockfuse.soak.seconds";
    private static final int THREAD_SLACK = 2;
    private static final int RSS_SLACK_MIB = 32;
    private static final int LIVE_HEAP_SLACK_MIB = 8;
    private static final int JOBS = 4;
    private static final long REGION = 64L << 20;
    /** The last sample is taken this long before fio's runtime ends, while it still runs. */
    private static final int LAST_SAMPLE_BEFORE_END = 3;

    /** In memory (/dev/shm), as the benches: the figures are the server's, not the disk's. */
    private Path dir;
    private final RealExports rig = new RealExports();
    private Process fio;

    @AfterEach
    void stop() throws Exception {
        if (fio != null) {
            fio.destroyForcibly(); // a fio stuck on the mount ends once close() aborts the connection
        }
        try {
            rig.close();
        } finally {
            if (fio != null && !fio.waitFor(30, TimeUnit.SECONDS)) {
                System.err.println("fio " + fio.pid() + " did not end");
            }
            if (dir != null) {
                try (Stream<Path> files = Files.list(dir)) {
                    for (Path p : files.collect(Collectors.toList())) {
                        Files.delete(p);
                    }
                }
                Files.delete(dir);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    void verifiedRandomLoadWithFlatResources(String transport) throws Exception {
        RealExports.transport(transport);
        RealExports.requireTool("fio");
        int seconds = Integer.getInteger(SECONDS_PROPERTY, 60);
        assertTrue(seconds >= 15, SECONDS_PROPERTY + "=" + seconds + " is too short to sample");
        int warmup = Math.min(120, seconds / 3);
        long begin = System.nanoTime();
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "blockfuse-soak-");
        Path image = RealExports.sparseImage(dir.resolve("soak.raw"), JOBS * REGION);
        FuseExport e = rig.start("soak-" + transport, RealExports.raw(image), dir.resolve("soak.img"), false,
                transport, Map.of());
        System.out.println("soak " + transport + ": mounted after " + elapsed(begin) + " s");
        Path report = dir.resolve("fio.txt");
        List<String> cmd = List.of("fio", "--name=soak", "--filename=" + e.mountPoint(), "--rw=randrw", "--bs=4k",
                "--direct=1", "--ioengine=libaio", "--numjobs=" + JOBS, "--iodepth=64", "--size=" + REGION,
                "--offset_increment=" + REGION, "--time_based", "--runtime=" + seconds, "--verify=crc32c",
                "--verify_fatal=1", "--verify_state_save=0", "--group_reporting");
        System.out.println("soak " + transport + ": " + seconds + " s, " + e.session().describe() + ": "
                + String.join(" ", cmd));
        // output to a file: no reader thread or pipe appears in the figures while fio runs
        long idle = e.requests();
        fio = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(report.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
        // fio's runtime starts with its I/O: the samples count from the first thousand requests
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (e.requests() < idle + 1000 && System.nanoTime() < deadline && !fio.waitFor(10,
                TimeUnit.MILLISECONDS)) {
            // waiting for the load to arrive
        }
        assertTrue(fio.isAlive() && e.requests() >= idle + 1000, "no load arrived within 60 s:\n"
                + Files.readString(report));
        System.out.println("soak " + transport + ": load after " + elapsed(begin) + " s");
        long started = System.nanoTime();

        List<Sample> samples = new ArrayList<>();
        List<Integer> at = new ArrayList<>();
        for (int t = warmup; t < seconds - LAST_SAMPLE_BEFORE_END; t += warmup) {
            at.add(t);
        }
        at.add(seconds - LAST_SAMPLE_BEFORE_END);
        for (int t : at) {
            long wait = started + TimeUnit.SECONDS.toNanos(t) - System.nanoTime();
            if (wait > 0 && fio.waitFor(wait, TimeUnit.NANOSECONDS)) {
                fail("fio ended after " + elapsed(started) + " s of " + seconds + ":\n" + Files.readString(report));
            }
            Sample s = Sample.take(elapsed(started), e.requests());
            samples.add(s);
            System.out.println("soak " + transport + ": " + s);
        }
        if (!fio.waitFor(seconds + 120L - elapsed(started), TimeUnit.SECONDS)) {
            fail("fio still running " + (seconds + 120) + " s after its load began");
        }
        System.out.println("soak " + transport + ": fio ended " + elapsed(started) + " s after its load began");
        String out = Files.readString(report);
        System.out.println(out.lines().filter(l -> l.contains("IOPS=") || l.contains("err=")).collect(
                Collectors.joining("\n")));
        assertEquals(0, fio.exitValue(), out);
        assertTrue(out.contains("err= 0"), out);
        assertFalse(out.contains("verify:"), out);
        assertEquals(0, e.ioErrors());
        assertEquals(List.of(), rig.halts);
        assertTrue(MountTable.find(e.mountPoint()).isPresent(), "still mounted");

        Sample first = samples.get(0);
        for (Sample s : samples.subList(1, samples.size())) {
            assertTrue(s.requests > first.requests, "requests kept coming: " + first + " then " + s);
            assertEquals(first.fds, s.fds, "open fds at " + first.second + " s and " + s.second + " s (now: "
                    + fdTargets() + ")");
            assertEquals(first.blockfuseThreads, s.blockfuseThreads, "blockfuse threads at " + first.second
                    + " s and " + s.second + " s");
            assertTrue(s.threads <= first.threads + THREAD_SLACK, "threads " + first + " then " + s);
            assertTrue(s.nonHeapRssKib <= first.nonHeapRssKib + RSS_SLACK_MIB * 1024L, "RSS " + first + " then " + s);
            assertTrue(s.liveHeapKib <= first.liveHeapKib + LIVE_HEAP_SLACK_MIB * 1024L, "heap " + first + " then " + s);
        }
        rig.close(e);
        assertNoExportResourcesLeft(image);
        System.out.println("soak " + transport + ": closed, " + elapsed(begin) + " s in all");
    }

    private static long elapsed(long started) {
        return TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started);
    }

    /** After close: no blockfuse thread, no fd on the image, /dev/fuse or an io_uring ring. */
    private static void assertNoExportResourcesLeft(Path image) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        List<String> left;
        do {
            left = new ArrayList<>(blockfuseThreadNames());
            for (String target : fdTargets()) {
                if (target.equals(image.toString()) || target.equals("/dev/fuse") || target.contains("io_uring")) {
                    left.add("fd -> " + target);
                }
            }
        } while (!left.isEmpty() && System.nanoTime() < deadline && pause());
        assertEquals(List.of(), left, "left after close");
    }

    private static boolean pause() {
        try {
            Thread.sleep(50);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return true;
    }

    private static List<String> blockfuseThreadNames() {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).map(Thread::getName)
                .filter(n -> n.startsWith("blockfuse")).sorted().collect(Collectors.toList());
    }

    private static List<String> fdTargets() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.map(p -> {
                try {
                    return Files.readSymbolicLink(p).toString();
                } catch (IOException gone) {
                    return "";
                }
            }).collect(Collectors.toList());
        }
    }

    /**
     * This JVM (which runs the server) at one moment. RSS is split from /proc/self/smaps into the
     * Java heap's address range (from the GC.heap_info diagnostic command) and the rest: G1 grows,
     * shrinks and lazily uncommits its regions, so the heap's share of RSS moves by tens of MiB with
     * no leak behind it. The rest (native memory, rings, buffers, code, metaspace, stacks) is what
     * the RSS check uses; the heap is checked by what stays live after a full GC.
     */
    private record Sample(long second, long rssKib, long nonHeapRssKib, long liveHeapKib, int threads,
            int blockfuseThreads, int fds, long requests, long serverAllocatedKib) {
        private static final Pattern HEAP_RANGE = Pattern.compile("\\[0x([0-9a-f]+),(?: 0x[0-9a-f]+,)? 0x([0-9a-f]+)\\)");

        static Sample take(long second, long requests) throws Exception {
            System.gc();
            long liveHeap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
            long[] heap = heapRange();
            long rss = 0;
            long heapRss = 0;
            boolean inHeap = false;
            for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
                int dash = line.indexOf('-');
                int space = line.indexOf(' ');
                if (dash > 0 && space > dash && line.substring(0, dash).matches("[0-9a-f]+")) {
                    long begin = Long.parseUnsignedLong(line.substring(0, dash), 16);
                    long end = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                    inHeap = begin >= heap[0] && end <= heap[1];
                } else if (line.startsWith("Rss:")) {
                    long kib = Long.parseLong(line.replaceAll("[^0-9]", ""));
                    rss += kib;
                    heapRss += inHeap ? kib : 0;
                }
            }
            // every fd but the JVM's class path jars, which its class loader opens the first time it
            // loads a class from one (that happened 40 s into a run and is no leak of ours)
            int fds = (int) fdTargets().stream().filter(t -> !t.endsWith(".jar")).count();
            var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            long allocated = 0;
            for (Thread t : Thread.getAllStackTraces().keySet()) {
                if (t.getName().startsWith("blockfuse")) {
                    allocated += Math.max(0, mx.getThreadAllocatedBytes(t.getId()));
                }
            }
            return new Sample(second, rss, rss - heapRss, liveHeap / 1024, osThreads(), blockfuseThreadNames().size(),
                    fds, requests, allocated / 1024);
        }

        /** [start, end) of the reserved Java heap, from "garbage-first heap total ..., used ... [0x.., 0x..)". */
        private static long[] heapRange() throws Exception {
            String info = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcHeapInfo",
                    new Object[] {new String[0]}, new String[] {String[].class.getName()});
            Matcher m = HEAP_RANGE.matcher(info);
            if (!m.find()) {
                throw new IOException("no heap address range in GC.heap_info: " + info);
            }
            return new long[] {Long.parseUnsignedLong(m.group(1), 16), Long.parseUnsignedLong(m.group(2), 16)};
        }

        private static int osThreads() throws IOException {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Threads:")) {
                    return Integer.parseInt(line.replaceAll("[^0-9]", ""));
                }
            }
            throw new IOException("no Threads: in /proc/self/status");
        }

        @Override
        public String toString() {
            return String.format("t=%ds RSS=%d MiB (outside the heap %d MiB, live heap %d MiB) threads=%d "
                    + "(blockfuse %d) fds=%d requests=%d server-allocated=%d MiB", second, rssKib / 1024,
                    nonHeapRssKib / 1024, liveHeapKib / 1024, threads, blockfuseThreads, fds, requests,
                    serverAllocatedKib / 1024);
        }
    }
}
