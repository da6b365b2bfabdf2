package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.ExportStatistics;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.RequestStats;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.uring.FaultyBackend.Fault;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Statistics through a real mount, on both transports: O_DIRECT reads and writes of 4 KiB each
 * reach blockfuse as exactly one READ or WRITE, so the counters must move by exactly what the test
 * did; EIO replies are counted by errno; every request is in the latency distribution; the queues
 * are the transport's; the recorders of ended threads are forgotten; statistics=off records nothing.
 */
class StatisticsMountTest {
    private static final int MIB = 1 << 20;
    private static final int BLOCK = 4096;
    private static final long SIZE = 16 * MIB;
    private static final Fault BAD_READS = Fault.failReads(8 * MIB, MIB);
    private static final int READS = 300;
    private static final int WRITES = 120;
    private static final int FAILED_READS = 7;

    @TempDir
    Path dir;
    private final RealExports rig = new RealExports();

    @AfterEach
    void unmount() throws Exception {
        rig.close();
    }

    private FuseExport start(String transport, RequestStats stats) throws Exception {
        Path image = RealExports.sparseImage(dir.resolve("stats.raw"), SIZE);
        FaultyBackend backend = new FaultyBackend(RealExports.raw(image), List.of(BAD_READS));
        return rig.start("stats-" + transport, backend, dir.resolve("stats.img"), new ExportPolicy(true, false, true, 0, 0),
                transport, Map.of(), stats);
    }

    /**
     * The figures once the kernel's last asynchronous request (the RELEASE after close) is answered:
     * nothing in flight and two snapshots in a row agree.
     */
    private static ExportStatistics quiet(FuseExport e) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        ExportStatistics last = e.statistics();
        while (true) {
            Thread.sleep(20);
            ExportStatistics now = e.statistics();
            if (now.inFlight() == 0 && now.requests() == last.requests() && now.latency().count() == now.requests()) {
                return now;
            }
            assertTrue(System.nanoTime() < deadline, "statistics never settled: " + now);
            last = now;
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void countersMoveByExactlyTheIoDone(String transport) throws Exception {
        RequestStats stats = new RequestStats(true);
        FuseExport e = start(transport, stats);
        ExportStatistics before = e.statistics();
        byte[] data = new byte[BLOCK];
        new Random(5).nextBytes(data);
        try (RealExports.DirectFile f = new RealExports.DirectFile(e.mountPoint(), BLOCK)) {
            for (int i = 0; i < WRITES; i++) {
                assertEquals(BLOCK, f.write((long) i * BLOCK, data), "write " + i);
            }
            for (int i = 0; i < READS; i++) {
                assertEquals(BLOCK, f.read((long) (i % 1000) * BLOCK, null, BLOCK), "read " + i);
            }
            for (int i = 0; i < FAILED_READS; i++) {
                assertEquals(-Errno.EIO, f.read(8L * MIB + (long) i * BLOCK, null, BLOCK), "failing read " + i);
            }
        }
        ExportStatistics after = quiet(e);

        assertTrue(after.enabled());
        assertEquals(READS + FAILED_READS, after.reads() - before.reads(), "READ requests");
        assertEquals((long) READS * BLOCK, after.bytesRead() - before.bytesRead(), "bytes read (failed reads move none)");
        assertEquals(WRITES, after.writes() - before.writes(), "WRITE requests");
        assertEquals((long) WRITES * BLOCK, after.bytesWritten() - before.bytesWritten(), "bytes written");
        assertEquals(FAILED_READS, after.errors().getOrDefault("EIO", 0L) - before.errors().getOrDefault("EIO", 0L),
                "EIO replies: " + after.errors());
        long requests = after.requests() - before.requests();
        assertTrue(requests >= READS + WRITES + FAILED_READS + 2, "OPEN and RELEASE too: " + after.byOpcode());
        assertEquals(requests, after.latency().since(before.latency()).count(),
                "every request is in the latency distribution once");
        assertTrue(after.latency().valueAtPercentile(50) > 0, "a request takes time");
        assertTrue(after.latency().valueAtPercentile(99) >= after.latency().valueAtPercentile(50));
        assertTrue(after.latency().max() >= after.latency().valueAtPercentile(99.9));
        assertTrue(after.peakInFlight() >= 1, "peak in flight " + after.peakInFlight());
        assertEquals(0, after.inFlight(), "nothing in flight once the client is done");

        List<QueueStatistics> queues = after.queues();
        assertFalse(queues.isEmpty());
        assertTrue(queues.stream().allMatch(q -> q.transport().equals(transport)), queues.toString());
        long served = queues.stream().mapToLong(QueueStatistics::served).sum();
        if (transport.equals(RealExports.URING)) {
            assertTrue(served >= READS + WRITES, "the rings took the I/O: " + queues);
        } else {
            assertEquals(1, queues.size(), "legacy has one queue: " + queues);
            assertTrue(served >= READS + WRITES + FAILED_READS, queues.toString());
        }
        assertTrue(rig.halts.isEmpty(), rig.halts.toString());

        // the transport's threads end with the export; the next fold forgets their recorders
        assertTrue(stats.recordingThreads() > 0);
        rig.close();
        stats.fold();
        assertEquals(0, stats.recordingThreads(), "recorders of ended threads are dropped");
        assertTrue(stats.snapshot("x", 0, 0, List.of()).latency().count() >= after.latency().count(),
                "their figures stay");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void statisticsOffRecordsNothingButRequests(String transport) throws Exception {
        RequestStats stats = new RequestStats(false);
        FuseExport e = start(transport, stats);
        try (RealExports.DirectFile f = new RealExports.DirectFile(e.mountPoint(), BLOCK)) {
            for (int i = 0; i < 50; i++) {
                assertEquals(BLOCK, f.read((long) i * BLOCK, null, BLOCK));
            }
        }
        ExportStatistics s = e.statistics();
        assertFalse(s.enabled());
        assertTrue(s.requests() >= 50, "requests are still counted: " + s.requests());
        assertTrue(s.byOpcode().isEmpty(), s.byOpcode().toString());
        assertEquals(0, s.latency().count());
        assertEquals(0, stats.recordingThreads(), "no thread recorded anything");
    }
}
