package org.blockfuse.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.qcow2.Capability;
import org.blockfuse.qcow2.internal.ImageMutator.Mutant;
import org.blockfuse.qcow2.internal.ImageMutator.Patch;
import org.blockfuse.qcow2.internal.MutantProbe.Outcome;
import org.blockfuse.qcow2.internal.MutantProbe.Reference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Image fuzzing: seeded mutations of valid images made with qemu-img and qemu-io (see {@link ImageMutator}
 * for what is mutated, {@link MutantProbe} for what each mutant must satisfy, {@link ImageLayout} for the
 * oracle that says which guest bytes a change may alter). Every mutant is opened through the factory as the
 * export does and runs on a worker thread under a time bound ({@link #TIMEOUT_SECONDS}) and a bound on what
 * it allocates ({@link #ALLOCATION_CAP}); a hang, an exception other than the refusal or EIO, or a breach
 * of either bound fails the test.
 * <p>
 * A fixed budget runs in the normal build. A new seed each run, printed with the result and in every
 * failure. Replay a run with {@code -Dblockfuse.fuzz.seed=N}, one mutant of it with
 * {@code -Dblockfuse.imagefuzz.mutant=I} as well; a longer run with {@code -Dblockfuse.imagefuzz.count=N}
 * (100000 take about 11 minutes here).
 */
class Qcow2ImageFuzzTest {

    static {
        // Every EIO mutant would log its read failure once: keep the build output readable.
        quiet(ReadFailureLog.class);
        quiet(ChainOpener.class);
    }

    private static final long SEED = Long.getLong("blockfuse.fuzz.seed", new SplittableRandom().nextLong());
    private static final int COUNT = Integer.getInteger("blockfuse.imagefuzz.count", 3000);
    private static final int ONLY = Integer.getInteger("blockfuse.imagefuzz.mutant", -1);
    private static final long TIMEOUT_SECONDS = 20;
    /** Heap bytes one mutant may allocate (open, full read, extent walk); the largest base needs ~20 MiB. */
    private static final long ALLOCATION_CAP = 128L << 20;
    private static final int MAX_FAILURES = 10;

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** One valid image to mutate, its mutant copy next to it, and what each of its views serves. */
    private record Base(String name, Path original, Path mutant, byte[] bytes, ImageLayout layout,
                        ImageMutator mutator, Map<String, ImageLayout.View> views, Map<String, Reference> refs) {
    }

    private static QemuTool qemu;
    private static final List<Base> BASES = new ArrayList<>();

    @BeforeAll
    static void makeBases() throws IOException {
        Capability.requireQemu();
        Capability.requireTools("mkfifo");
        qemu = new QemuTool();
        Random r = new Random(11);
        byte[] noise = new byte[2 << 20];
        r.nextBytes(noise);
        Files.write(qemu.path("noise.bin"), noise);
        byte[] text = new byte[2 << 20];
        for (int i = 0; i < text.length; i++) {
            text[i] = (byte) "abcd".charAt(r.nextInt(4)); // compresses about 3:1, unlike noise
        }
        Files.write(qemu.path("text.bin"), text);
        qemu.create("back.qcow2", "cluster_size=64k", "2M");
        qemu.io("back.qcow2", "write -s noise.bin 0 2M");
        qemu.rawFile("back.raw", (2 << 20) + 1000, 4);
        qemu.run("mkfifo", "fifo");
        Files.createDirectories(qemu.path("folder"));

        // 512-byte clusters: 32 L2 tables, 2-sector compressed descriptors, a snapshot sharing L2 tables.
        qemu.create("small.qcow2", "compat=1.1,cluster_size=512", "1M", "-b", "back.qcow2", "-F", "qcow2");
        qemu.io("small.qcow2", "write -s noise.bin 0 96k", "write -c -P 0x31 128k 64k",
                "write -c -s text.bin 256k 32k", "write -z 320k 16k", "discard 48k 8k");
        qemu.run("qemu-img", "snapshot", "-c", "s1", "small.qcow2");
        qemu.io("small.qcow2", "write -P 0x44 700k 3k", "write -c -s text.bin 200k 8k", "write -s noise.bin 64k 4k");
        // v2 over a raw file whose format is not recorded (probed), with an unknown extension left in its place.
        qemu.create("v2.qcow2", "compat=0.10,cluster_size=4k", "2M", "-b", "back.raw", "-F", "raw");
        qemu.io("v2.qcow2", "write -s noise.bin 0 256k", "write -c -s text.bin 512k 128k", "write -c -P 0x22 1M 64k",
                "write -P 0x23 1500k 10k");
        qemu.run("qemu-img", "snapshot", "-c", "s1", "v2.qcow2");
        qemu.io("v2.qcow2", "write -s noise.bin 100k 40k", "write -c -s text.bin 1800k 32k");
        renameBackingFormatExtension(qemu.path("v2.qcow2"));
        // zstd, the last compressed cluster ending the file inside a sector.
        qemu.create("zstd.qcow2", "compression_type=zstd,cluster_size=64k", "2M");
        qemu.io("zstd.qcow2", "write -c -s text.bin 0 512k", "write -c -P 0x61 512k 256k", "write -s noise.bin 1M 128k",
                "write -z 1280k 64k", "write -c -s text.bin 1984k 64k");
        // Extended L2 (2 KiB subclusters) over a backing file.
        qemu.create("xl2.qcow2", "extended_l2=on,cluster_size=64k", "2M", "-b", "back.qcow2", "-F", "qcow2");
        qemu.io("xl2.qcow2", "write -P 0x51 0 2k", "write -s noise.bin 10k 5k", "write -z 32k 4k",
                "write -c -P 0x53 128k 64k", "write -P 0x54 200k 64k", "discard 210k 4k", "write -s noise.bin 1M 100k");
        // External data file.
        qemu.create("datafile.qcow2", "data_file=datafile.data,cluster_size=4k", "1M");
        qemu.io("datafile.qcow2", "write -s noise.bin 0 64k", "write -P 0xb2 100k 30k", "write -z 512k 128k",
                "write -P 0xb3 900k 4k");
        // 2 MiB clusters: the largest tables and compressed clusters there are.
        qemu.create("big.qcow2", "cluster_size=2M", "4M");
        qemu.io("big.qcow2", "write -c -s text.bin 0 2M", "write -P 0x71 2M 100k");

        List<String> names = new ArrayList<>(List.of("back.qcow2", "back.raw", "small.qcow2", "zstd.qcow2",
                "datafile.data", "noise.bin", "fifo", "folder", ".", "/", "/dev/zero", "/dev/null",
                "/proc/self/environ", "/nonexistent/x", "missing.qcow2", "../" + qemu.dir.getFileName() + "/back.qcow2",
                qemu.path("back.qcow2").toString(), "two\nlines.qcow2", "\u001b[31mred.qcow2"));
        for (String b : List.of("small", "v2", "zstd", "xl2", "datafile", "big")) {
            names.add("fuzz-" + b + ".qcow2"); // the mutant itself among them: a loop
        }
        for (String b : List.of("small", "v2", "zstd", "xl2", "datafile", "big")) {
            BASES.add(base(b, names));
        }
    }

    private static Base base(String name, List<String> names) throws IOException {
        Path original = qemu.path(name + ".qcow2");
        byte[] bytes = Files.readAllBytes(original);
        ImageLayout layout = new ImageLayout(bytes);
        Map<String, ImageLayout.View> views = new LinkedHashMap<>();
        Map<String, Reference> refs = new HashMap<>();
        List<String> snapshots = new ArrayList<>();
        snapshots.add(null);
        snapshots.addAll(layout.snapshotNames());
        for (String snapshot : snapshots) {
            String key = String.valueOf(snapshot);
            views.put(key, layout.view(snapshot));
            Path raw = qemu.path(name + "." + key + ".raw");
            List<String> cmd = new ArrayList<>(List.of("qemu-img", "convert"));
            if (snapshot != null) {
                cmd.addAll(List.of("-l", "snapshot.name=" + snapshot));
            }
            cmd.addAll(List.of("-O", "raw", original.toString(), raw.toString()));
            qemu.run(cmd.toArray(String[]::new));
            byte[] content = Files.readAllBytes(raw);
            Files.delete(raw);
            try (BlockBackend b = QemuTool.open(original, options(snapshot))) {
                List<BlockBackend.Extent> extents = QemuTool.ourMap(b);
                if (snapshot == null) {
                    assertEquals(qemu.qemuMap(original), extents, "allocation map of the unmutated " + name);
                }
                byte[] ours = new byte[content.length];
                b.read(0, java.nio.ByteBuffer.wrap(ours));
                assertTrue(Arrays.equals(content, ours), "content of the unmutated " + name + " view " + key);
                refs.put(key, new Reference(content, extents));
            }
        }
        Path mutant = qemu.path("fuzz-" + name + ".qcow2");
        Files.write(mutant, bytes);
        return new Base(name, original, mutant, bytes, layout, new ImageMutator(layout, bytes, names), views, refs);
    }

    /** Turns the backing format extension into an unknown one (skipped by readers) of a v2 image. */
    private static void renameBackingFormatExtension(Path image) throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(Files.readAllBytes(image));
        for (int pos = Qcow2Format.V2_HEADER_LENGTH; b.getInt(pos) != Qcow2Format.EXT_END; ) {
            if (b.getInt(pos) == Qcow2Format.EXT_BACKING_FORMAT) {
                QemuTool.patchInt(image, pos, 0x0badf00d);
                return;
            }
            pos += 8 + (int) Qcow2Format.alignUp(b.getInt(pos + 4), 8);
        }
        throw new AssertionError("no backing format extension in " + image);
    }

    private static Map<String, String> options(String snapshot) {
        return snapshot == null ? Map.of() : Map.of(OpenOptions.SNAPSHOT, snapshot);
    }

    @AfterAll
    static void cleanUp() throws IOException {
        if (qemu != null) {
            qemu.close();
        }
    }

    /** Counts of outcomes and notable messages, for the summary line. */
    private static final class Tally {
        final Map<Outcome, Integer> outcomes = new TreeMap<>();
        final Map<String, Map<Outcome, Integer>> perBase = new TreeMap<>();
        final Map<String, Integer> refusals = new HashMap<>();
        final Map<String, Integer> eios = new HashMap<>();
        int inert;
        int sampled;
        int walkCut;
        int snapshotViews;
        long slowestMillis;
        int slowest;
        long mostAllocated;

        void add(Base base, Outcome o, MutantProbe.Notes n, boolean strictlyInert, boolean snapshot) {
            outcomes.merge(o, 1, Integer::sum);
            perBase.computeIfAbsent(base.name, k -> new TreeMap<>()).merge(o, 1, Integer::sum);
            if (n.refusal != null) {
                refusals.merge(shape(n.refusal), 1, Integer::sum);
            }
            if (n.eio != null) {
                eios.merge(shape(n.eio), 1, Integer::sum);
            }
            inert += strictlyInert ? 1 : 0;
            sampled += n.sampled ? 1 : 0;
            walkCut += n.walkCut ? 1 : 0;
            snapshotViews += snapshot ? 1 : 0;
            mostAllocated = Math.max(mostAllocated, n.allocated);
        }

        int count(Outcome o) {
            return outcomes.getOrDefault(o, 0);
        }

        /** A message without the image path and numbers, so that like refusals count together. */
        private static String shape(String message) {
            return message.replace(qemu.dir.toString() + "/", "").replaceAll("fuzz-[a-z0-9]+\\.qcow2", "IMG")
                    .replaceAll("'[^']*'", "'...'").replaceAll("\\d+", "N");
        }

        static String top(Map<String, Integer> m, int n) {
            return m.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed()).limit(n)
                    .map(e -> e.getValue() + "x " + e.getKey()).collect(Collectors.joining("; "));
        }
    }

    @Test
    void mutatedImagesAreRefusedOrServedWithinBounds() throws Exception {
        Tally tally = new Tally();
        List<String> failures = new ArrayList<>();
        AtomicReference<Thread> workerThread = new AtomicReference<>();
        ExecutorService worker = newWorker(workerThread);
        MutantProbe.Scratch scratch = new MutantProbe.Scratch();
        long fdsBefore = openFds();
        long start = System.nanoTime();
        int run = 0;
        try {
            int first = ONLY >= 0 ? ONLY : 0;
            int end = ONLY >= 0 ? ONLY + 1 : COUNT;
            for (int i = first; i < end && failures.size() < MAX_FAILURES; i++) {
                Random r = new Random(mix(SEED, i));
                Base base = BASES.get(r.nextInt(BASES.size()));
                List<String> snapshots = base.layout.snapshotNames();
                String snapshot = !snapshots.isEmpty() && r.nextInt(4) == 0
                        ? snapshots.get(r.nextInt(snapshots.size())) : null;
                Mutant m = base.mutator.mutate(r);
                ImageLayout.Effect effect = ImageLayout.effect(base.views.get(String.valueOf(snapshot)),
                        m.changed(base.bytes.length));
                MutantProbe probe = new MutantProbe(base.mutant, options(snapshot),
                        base.refs.get(String.valueOf(snapshot)), effect, new Random(r.nextLong()), scratch);
                String what = "image fuzz seed " + SEED + ", mutant #" + i + " of " + base.name
                        + (snapshot == null ? "" : " (snapshot " + snapshot + ")") + ", changes " + m.description()
                        + ", may affect " + describe(effect);
                apply(base, m);
                long t0 = System.nanoTime();
                Future<Outcome> f = worker.submit(() -> {
                    long before = THREADS.getCurrentThreadAllocatedBytes();
                    Outcome o = probe.run();
                    long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;
                    probe.notes().allocated = allocated;
                    if (allocated > ALLOCATION_CAP) {
                        throw new AssertionError("allocated " + (allocated >> 20) + " MiB (cap "
                                + (ALLOCATION_CAP >> 20) + " MiB)");
                    }
                    return o;
                });
                run++;
                try {
                    Outcome o = f.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
                    tally.add(base, o, probe.notes(), effect.strictlyInert(), snapshot != null);
                } catch (TimeoutException e) {
                    Thread stuck = workerThread.get();
                    failures.add(what + ": no answer within " + TIMEOUT_SECONDS + " s, worker at "
                            + Arrays.stream(stuck.getStackTrace()).limit(12).map(String::valueOf)
                            .collect(Collectors.joining(" <- ")));
                    worker.shutdownNow();
                    worker = newWorker(workerThread); // the stuck one is a daemon and holds only this mutant's file
                    scratch = new MutantProbe.Scratch(); // the stuck thread may still write to the old one
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    failures.add(what + ": " + cause + stackTop(cause));
                }
                long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                if (millis > tally.slowestMillis) {
                    tally.slowestMillis = millis;
                    tally.slowest = i;
                }
                restore(base, m);
            }
        } finally {
            worker.shutdownNow();
        }
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        String summary = String.format("image fuzz: seed %d, %d mutants in %d ms (slowest #%d, %d ms; most allocated"
                + " by one: %d MiB): refused %d, served %d, EIO %d; %d touched nothing the view reads (served unchanged), %d exported a snapshot,"
                + " %d sampled (mutated size > %d MiB), %d extent walks cut at the time cap; per base %s;"
                + " top refusals: %s; top EIO: %s", SEED, run, millis, tally.slowest, tally.slowestMillis, tally.mostAllocated >> 20,
                tally.count(Outcome.REFUSED), tally.count(Outcome.SERVED), tally.count(Outcome.EIO), tally.inert,
                tally.snapshotViews, tally.sampled, MutantProbe.FULL_READ_LIMIT >> 20, tally.walkCut, tally.perBase,
                Tally.top(tally.refusals, 8), Tally.top(tally.eios, 6));
        System.out.println(summary);
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " failing mutant(s), replay with -Dblockfuse.fuzz.seed=" + SEED
                    + " (and -Dblockfuse.imagefuzz.mutant=I for one of them):\n  " + String.join("\n  ", failures)
                    + "\n" + summary);
        }
        long fdsAfter = openFds();
        assertTrue(fdsAfter <= fdsBefore + 4, "file descriptors leaked: " + fdsBefore + " before, " + fdsAfter
                + " after");
        if (ONLY < 0 && run >= 500) {
            // the mix reaches every kind of outcome, or the fuzzer is not doing its job
            assertTrue(tally.count(Outcome.REFUSED) > run / 10, summary);
            assertTrue(tally.count(Outcome.SERVED) > run / 10, summary);
            assertTrue(tally.count(Outcome.EIO) > run / 20, summary);
            assertTrue(tally.inert > run / 50, summary);
        }
    }

    private static ExecutorService newWorker(AtomicReference<Thread> thread) {
        return Executors.newSingleThreadExecutor(task -> {
            Thread t = new Thread(task, "qcow2-image-fuzz");
            t.setDaemon(true);
            thread.set(t);
            return t;
        });
    }

    /** Writes the mutant into the base's mutant file (which holds the unmutated bytes). */
    private static void apply(Base base, Mutant m) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(base.mutant.toFile(), "rw")) {
            for (Patch p : m.patches()) {
                f.seek(p.offset());
                f.write(p.bytes());
            }
            if (m.newLength() >= 0) {
                f.setLength(m.newLength());
            }
        }
    }

    /** Puts the unmutated bytes back. */
    private static void restore(Base base, Mutant m) throws IOException {
        int length = base.bytes.length;
        try (RandomAccessFile f = new RandomAccessFile(base.mutant.toFile(), "rw")) {
            f.setLength(length);
            for (long[] c : m.changed(length)) {
                long from = Math.min(c[0], length);
                long to = Math.min(c[1], length);
                f.seek(from);
                f.write(base.bytes, (int) from, (int) (to - from));
            }
        }
    }

    private static String describe(ImageLayout.Effect e) {
        if (e.strictlyInert()) {
            return "nothing";
        }
        String guest = e.guest().stream().limit(4).map(g -> "[" + g[0] + ", " + g[1] + ")")
                .collect(Collectors.joining(" "));
        String scope = e.any() ? "anything" : e.validated() ? "open (validated fields)" : "";
        return scope + " " + guest + " via " + e.touched();
    }

    private static String stackTop(Throwable t) {
        return " at " + Arrays.stream(t.getStackTrace()).limit(8).map(String::valueOf)
                .collect(Collectors.joining(" <- "));
    }

    private static long mix(long seed, long i) {
        long z = seed + (i + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static long openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    private static void quiet(Class<?> logger) {
        System.setProperty("org.slf4j.simpleLogger.log." + logger.getName(), "error");
    }
}
