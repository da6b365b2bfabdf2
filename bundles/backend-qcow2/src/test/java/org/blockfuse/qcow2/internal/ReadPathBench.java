package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;

/**
 * Manual read-path micro benchmark (not a test, never run by the build). Compares a plain positional
 * FileChannel baseline on a raw image with qcow2 copies of it opened through {@link Qcow2BackendFactory}.
 * All reads go into page-aligned direct buffers, as the FUSE transport hands them to the backend.
 *
 * <pre>
 * java -cp target/classes:target/test-classes:$(cat /tmp/qcp.txt) org.blockfuse.qcow2.internal.ReadPathBench \
 *     [-Dbench.ms=1500] [-Dbench.cases=rand4k,rand4k-2t,seq1m,seq4k] raw.img name=image.qcow2 ...
 * </pre>
 */
public final class ReadPathBench {

    private static final int PAGE = 4096;

    /** What the benchmark reads through: the baseline channel or a backend. */
    private interface Target extends AutoCloseable {
        void read(long offset, ByteBuffer dst) throws IOException;

        long size();

        @Override
        void close() throws IOException;
    }

    private static final class ChannelTarget implements Target {
        private final FileChannel channel;
        private final long size;

        ChannelTarget(Path path) throws IOException {
            channel = FileChannel.open(path, StandardOpenOption.READ);
            size = channel.size();
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws IOException {
            long at = offset;
            while (dst.hasRemaining()) {
                int n = channel.read(dst, at);
                if (n < 0) {
                    throw new IOException("EOF");
                }
                at += n;
            }
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    private static final class BackendTarget implements Target {
        private final BlockBackend backend;

        BackendTarget(BlockBackend backend) {
            this.backend = backend;
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws IOException {
            backend.read(offset, dst);
        }

        @Override
        public long size() {
            return backend.size();
        }

        @Override
        public void close() throws IOException {
            backend.close();
        }
    }

    private record Result(double nsPerOp, double mibPerSec, double bytesAllocPerOp) {
    }

    private ReadPathBench() {
    }

    public static void main(String[] args) throws Exception {
        long ms = Long.getLong("bench.ms", 1500);
        List<String> cases = Arrays.asList(System.getProperty("bench.cases", "rand4k,rand4k-2t,seq1m,seq4k").split(","));
        Map<String, Target> targets = new java.util.LinkedHashMap<>();
        targets.put("raw-pread", new ChannelTarget(Path.of(args[0])));
        Qcow2BackendFactory factory = new Qcow2BackendFactory();
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            BlockBackend backend = factory.open(new BackendRequest(Path.of(kv[1]), false, Map.of()));
            targets.put(kv[0], new BackendTarget(backend));
        }
        verify(targets);
        System.out.printf(Locale.ROOT, "loadavg before: %s%n", loadavg());
        System.out.printf(Locale.ROOT, "%-12s %-10s %12s %10s %10s %8s%n", "image", "case", "ns/op", "MiB/s", "B/op", "xRaw");
        Map<String, Double> rawNs = new java.util.HashMap<>();
        for (String c : cases) {
            for (Map.Entry<String, Target> e : targets.entrySet()) {
                Result r = run(c, e.getValue(), ms);
                if (e.getKey().equals("raw-pread")) {
                    rawNs.put(c, r.nsPerOp);
                }
                double ratio = rawNs.getOrDefault(c, Double.NaN) / r.nsPerOp;
                System.out.printf(Locale.ROOT, "%-12s %-10s %12.0f %10.1f %10.0f %8.2f%n", e.getKey(), c,
                        r.nsPerOp, r.mibPerSec, r.bytesAllocPerOp, ratio);
            }
        }
        System.out.printf(Locale.ROOT, "loadavg after: %s%n", loadavg());
        for (Target t : targets.values()) {
            t.close();
        }
    }

    private static String loadavg() throws IOException {
        return java.nio.file.Files.readString(Path.of("/proc/loadavg")).trim();
    }

    /**
     * A quick byte-exact sanity check of every target against the raw baseline: random ranges of random
     * length, then 4k reads sweeping a few clusters (the decompressed-cluster cache path), from two threads.
     */
    private static void verify(Map<String, Target> targets) throws Exception {
        Target raw = targets.get("raw-pread");
        List<Thread> threads = new ArrayList<>();
        Throwable[] failure = new Throwable[1];
        for (int t = 0; t < 2; t++) {
            Thread thread = new Thread(() -> {
                try {
                    ThreadLocalRandom rnd = ThreadLocalRandom.current();
                    ByteBuffer expected = aligned(1 << 20);
                    ByteBuffer actual = aligned(1 << 20);
                    for (int i = 0; i < 600; i++) {
                        int len = 1 + rnd.nextInt(i % 3 == 0 ? 1 << 20 : 70_000);
                        check(targets, raw, rnd.nextLong(raw.size() - len), len, expected, actual);
                    }
                    long start = rnd.nextLong(raw.size() / 2, raw.size() - (1 << 20)) & ~4095L;
                    for (long off = start; off < start + (1 << 20); off += 4096) {
                        check(targets, raw, off, 4096, expected, actual);
                    }
                } catch (Throwable e) {
                    failure[0] = e;
                }
            });
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) {
            thread.join();
        }
        if (failure[0] != null) {
            throw new AssertionError("verification failed", failure[0]);
        }
    }

    private static void check(Map<String, Target> targets, Target raw, long off, int len, ByteBuffer expected,
                              ByteBuffer actual) throws IOException {
        expected.clear().limit(len);
        raw.read(off, expected);
        expected.flip();
        for (Map.Entry<String, Target> e : targets.entrySet()) {
            actual.clear().limit(len);
            e.getValue().read(off, actual);
            actual.flip();
            if (!actual.equals(expected)) {
                throw new AssertionError(e.getKey() + " differs at " + off + "+" + len);
            }
        }
    }

    private static ByteBuffer aligned(int size) {
        return ByteBuffer.allocateDirect(size + PAGE).alignedSlice(PAGE).limit(size);
    }

    private static Result run(String name, Target target, long ms) throws Exception {
        return switch (name) {
            case "rand4k" -> timed(target, ms, 1, PAGE, true);
            case "rand4k-2t" -> timed(target, ms, 2, PAGE, true);
            case "seq1m" -> timed(target, ms, 1, 1 << 20, false);
            case "seq1m-2t" -> timed(target, ms, 2, 1 << 20, false);
            case "seq4k" -> timed(target, ms, 1, PAGE, false);
            default -> throw new IllegalArgumentException("unknown case " + name);
        };
    }

    /** Warms up for a third of ms, then measures for ms; threads read independently. */
    private static Result timed(Target target, long ms, int threads, int blockSize, boolean random) throws Exception {
        long blocks = target.size() / blockSize;
        AtomicBoolean measuring = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        long[] ops = new long[threads];
        long[] allocated = new long[threads];
        IOException[] failure = new IOException[1];
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            Thread w = new Thread(() -> {
                ByteBuffer buf = aligned(blockSize);
                ThreadLocalRandom rnd = ThreadLocalRandom.current();
                long next = blocks / threads * id;
                long n = 0;
                long allocStart = 0;
                boolean counting = false;
                try {
                    while (!stop.get()) {
                        if (!counting && measuring.get()) {
                            counting = true;
                            n = 0;
                            allocStart = mx.getCurrentThreadAllocatedBytes();
                        }
                        long block = random ? rnd.nextLong(blocks) : next++ % blocks;
                        buf.clear();
                        target.read(block * blockSize, buf);
                        n++;
                    }
                } catch (IOException e) {
                    failure[0] = e;
                }
                ops[id] = n;
                allocated[id] = mx.getCurrentThreadAllocatedBytes() - allocStart;
            });
            workers.add(w);
            w.start();
        }
        Thread.sleep(Math.max(200, ms / 3));
        measuring.set(true);
        long start = System.nanoTime();
        Thread.sleep(ms);
        stop.set(true);
        long elapsed = System.nanoTime() - start;
        for (Thread w : workers) {
            w.join();
        }
        if (failure[0] != null) {
            throw failure[0];
        }
        long total = Arrays.stream(ops).sum();
        long alloc = Arrays.stream(allocated).sum();
        double nsPerOp = (double) elapsed / total;
        double mib = (double) total * blockSize / (1 << 20) / (elapsed / 1e9);
        return new Result(nsPerOp, mib, (double) alloc / total);
    }
}
