package org.blockfuse.itests;

import static org.junit.Assert.*;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;

/**
 * Issue 9: hot swap under verified fio load in the real distribution. fio runs one verified randrw
 * job after another (4 jobs x QD 16, each job its own 60 MiB region of a 256 MiB raw export; each
 * run opens the file afresh) while the io_uring transport bundle is stopped and started 10 times,
 * the export is switched back and forth with transport-switch 10 times, and the io_uring bundle is
 * updated 3 times. Zero fio errors and zero verify failures; every replaced connection ends with
 * nothing waiting; the file answers a stat throughout; nothing stays mounted at the end. Prints the
 * longest completion latency fio saw in runs that spanned a swap, per direction.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class HotSwapUnderLoadIT extends KarafSupport {
    private static final long MIB = 1 << 20;
    private static final long REGION = 60 * MIB;
    private static final String NAME = "hotswap";

    @Inject
    BundleContext context;

    @Configuration
    public Option[] config() {
        return baseConfig();
    }

    private Bundle bundle(String symbolicName) {
        return Arrays.stream(context.getBundles()).filter(b -> b.getSymbolicName().equals(symbolicName)).findFirst()
                .orElseThrow(() -> new AssertionError("no bundle " + symbolicName));
    }

    /** One fio run: how it ended. */
    private record Run(int exit, String output) {
    }

    /** The longest completion fio saw in one 50 ms window (fio's latency log, unix epoch ms). */
    private record Sample(long atMillis, long maxNanos) {
    }

    /** One swap: when (epoch ms) and which way. */
    private record Swap(long startMillis, long endMillis, String direction) {
    }

    /** fio runs back to back on a thread of its own until stopped. */
    private static final class FioRuns implements AutoCloseable {
        final List<Run> runs = new ArrayList<>();
        final List<Sample> samples = new ArrayList<>();
        private final AtomicBoolean stop = new AtomicBoolean();
        private final Thread thread;
        private volatile Process current;

        FioRuns(Path file, Path logDir) {
            Path log = logDir.resolve("lat");
            thread = new Thread(() -> {
                while (!stop.get()) {
                    try {
                        Process p = new ProcessBuilder("fio", "--name=hotswap", "--filename=" + file, "--rw=randrw",
                                "--rwmixread=70", "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=16",
                                "--numjobs=4", "--thread", "--size=" + REGION, "--offset_increment=" + REGION,
                                "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0", "--group_reporting",
                                "--write_lat_log=" + log, "--log_avg_msec=50", "--log_max_value=1", "--per_job_logs=0",
                                "--log_unix_epoch=1", "--output-format=json").redirectErrorStream(true).start();
                        current = p;
                        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
                            try {
                                return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                            } catch (IOException e) {
                                return e.toString();
                            }
                        });
                        if (!p.waitFor(120, TimeUnit.SECONDS)) {
                            p.destroyForcibly();
                            p.waitFor(10, TimeUnit.SECONDS);
                        }
                        String text = out.get(10, TimeUnit.SECONDS);
                        Path clat = logDir.resolve("lat_clat.log");
                        List<Sample> got = new ArrayList<>();
                        if (Files.exists(clat)) {
                            for (String line : Files.readAllLines(clat)) {
                                String[] f = line.split(",\\s*");
                                got.add(new Sample(Long.parseLong(f[0]), Long.parseLong(f[1])));
                            }
                        }
                        try (var logs = Files.newDirectoryStream(logDir, "lat_*.log")) {
                            for (Path l : logs) {
                                Files.delete(l);
                            }
                        }
                        synchronized (runs) {
                            runs.add(new Run(p.isAlive() ? -1 : p.exitValue(), text));
                            samples.addAll(got);
                        }
                    } catch (Exception e) {
                        synchronized (runs) {
                            runs.add(new Run(-2, e.toString()));
                        }
                        return;
                    }
                }
            }, "fio-runs");
            thread.start();
        }

        List<Run> runs() {
            synchronized (runs) {
                return new ArrayList<>(runs);
            }
        }

        List<Sample> samples() {
            synchronized (runs) {
                return new ArrayList<>(samples);
            }
        }

        void awaitRuns(int n) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (runs().size() < n && System.nanoTime() < deadline && thread.isAlive()) {
                Thread.sleep(50);
            }
            assertTrue("fio completed " + runs().size() + " runs, wanted " + n, runs().size() >= n);
        }

        @Override
        public void close() throws InterruptedException {
            stop.set(true);
            thread.join(150_000);
            Process p = current;
            if (p != null && p.isAlive()) { // by PID, never by name
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    private static int waiting(int connection) throws IOException {
        Path w = Path.of("/sys/fs/fuse/connections/" + connection + "/waiting");
        return Files.exists(w) ? Integer.parseInt(Files.readString(w).trim()) : 0;
    }

    @Test
    public void verifiedFioAcrossStopStartSwitchAndUpdateOfTheUringBundleLosesNothing() throws Exception {
        assertTrue("io_uring is needed for this test", transports().contains("io_uring"));
        // the demo export would fall back too and could be given a replaced connection's number
        awaitState("demo", "active", 60);
        run("blockfuse:export-remove demo");
        Path dir = workDir(NAME);
        Path image = dir.resolve("disk.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(256 * MIB);
        }
        Path mount = dir.resolve("disk.img");
        run("blockfuse:export-add --writable " + NAME + " " + image + " " + mount);
        Bundle uring = bundle("org.blockfuse.transport-uring");
        List<Swap> swaps = new ArrayList<>();
        AtomicInteger unanswered = new AtomicInteger();
        AtomicBoolean probing = new AtomicBoolean(true);
        Thread prober = new Thread(() -> {
            while (probing.get()) {
                try {
                    CompletableFuture.supplyAsync(() -> {
                        try {
                            return Files.size(mount);
                        } catch (IOException e) {
                            return -1L;
                        }
                    }).get(5, TimeUnit.SECONDS);
                    Thread.sleep(100);
                } catch (Exception e) {
                    unanswered.incrementAndGet();
                }
            }
        }, "stat-prober");
        Path logs = Files.createDirectories(dir.resolve("fio-logs"));
        FioRuns fio = new FioRuns(mount, logs);
        try {
            awaitTransport(NAME, "io_uring", 30);
            prober.start();
            fio.awaitRuns(1);
            for (int i = 0; i < 10; i++) {
                swaps.add(fallback(mount, "bundle:stop", uring::stop));
                swaps.add(upgrade(mount, "bundle:start", uring::start));
            }
            for (int i = 0; i < 10; i++) {
                swaps.add(fallback(mount, "transport-switch", () -> run("blockfuse:transport-switch " + NAME + " legacy")));
                swaps.add(upgrade(mount, "transport-switch", () -> run("blockfuse:transport-switch " + NAME + " io_uring")));
            }
            for (int i = 0; i < 3; i++) {
                int before = connectionOf(mount);
                long t0 = System.currentTimeMillis();
                uring.update();
                awaitTransport(NAME, "io_uring", 60);
                swaps.add(new Swap(t0, System.currentTimeMillis(), "bundle:update (fallback, then upgrade)"));
                assertNotEquals("bundle:update moves the export to a new connection", before, connectionOf(mount));
                awaitEnded(before, "bundle:update");
            }
            int count = fio.runs().size();
            fio.awaitRuns(count + 1); // one more full run on the final state
        } finally {
            fio.close();
            probing.set(false);
            prober.join(10_000);
            if (uring.getState() != Bundle.ACTIVE) {
                uring.start();
            }
        }
        List<Run> runs = fio.runs(); // the fio thread has ended: judge every run
        report(fio.samples(), swaps);
        List<String> bad = new ArrayList<>();
        for (Run r : runs) {
            if (r.exit() != 0) {
                bad.add("exit " + r.exit() + ":\n" + r.output());
            }
        }
        assertEquals("every fio run succeeded and verified", List.of(), bad);
        assertEquals("the file answered a stat within 5 s throughout", 0, unanswered.get());
        String verbose = run("blockfuse:export-list --verbose");
        assertTrue(verbose, verbose.contains("transport switches:") && verbose.contains("transport-switch"));
        assertEquals("nothing waiting on the serving connection", 0, waiting(connectionOf(mount)));
        run("blockfuse:export-remove " + NAME);
        assertFalse(isMounted(mount));
    }

    private interface Step {
        void run() throws Exception;
    }

    /** io_uring -> legacy: a new connection; the old one drains and ends with nothing waiting. */
    private Swap fallback(Path mount, String how, Step step) throws Exception {
        int before = connectionOf(mount);
        long t0 = System.currentTimeMillis();
        step.run();
        awaitTransport(NAME, "legacy", 60);
        long t1 = System.currentTimeMillis();
        int after = connectionOf(mount);
        assertNotEquals(how + ": io_uring -> legacy needs a new connection", before, after);
        awaitEnded(before, how);
        return new Swap(t0, t1, "io_uring -> legacy (" + how + ")");
    }

    /**
     * A replaced connection ends by itself once the fio run holding it open ends (only our swaps make
     * connections here, so its number is not reused meanwhile); until then nothing may be stuck.
     */
    private static void awaitEnded(int connection, String how) throws Exception {
        Path dir = Path.of("/sys/fs/fuse/connections/" + connection);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(45);
        while (Files.exists(dir) && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertFalse(how + ": the replaced connection " + connection + " did not end within 45 s (waiting "
                + waiting(connection) + ")", Files.exists(dir));
    }

    /** legacy -> io_uring: the live connection, no remount. */
    private Swap upgrade(Path mount, String how, Step step) throws Exception {
        int before = connectionOf(mount);
        long t0 = System.currentTimeMillis();
        step.run();
        awaitTransport(NAME, "io_uring", 60);
        long t1 = System.currentTimeMillis();
        assertEquals(how + ": legacy -> io_uring keeps the live connection", before, connectionOf(mount));
        return new Swap(t0, t1, "legacy -> io_uring (" + how + ")");
    }

    /**
     * The longest completion fio saw while each kind of swap was under way (from the command to
     * the new state, plus 200 ms for requests issued just before), and in every other window.
     */
    private static void report(List<Sample> samples, List<Swap> swaps) {
        java.util.Map<String, Long> worst = new java.util.TreeMap<>();
        java.util.Map<String, Integer> count = new java.util.TreeMap<>();
        swaps.forEach(s -> count.merge(s.direction().replaceAll(" \\(.*", ""), 1, Integer::sum));
        long calm = 0;
        for (Sample x : samples) {
            boolean during = false;
            for (Swap s : swaps) {
                if (x.atMillis() >= s.startMillis() && x.atMillis() <= s.endMillis() + 200) {
                    worst.merge(s.direction().replaceAll(" \\(.*", ""), x.maxNanos(), Math::max);
                    during = true;
                }
            }
            if (!during) {
                calm = Math.max(calm, x.maxNanos());
            }
        }
        StringBuilder sb = new StringBuilder("hot swap: longest fio completion (4 jobs x QD 16, 50 ms windows):");
        worst.forEach((k, v) -> sb.append(String.format(" %s %.1f ms over %d swaps;", k, v / 1e6, count.get(k))));
        sb.append(String.format(" outside any swap %.1f ms", calm / 1e6));
        System.out.println(sb);
    }
}
