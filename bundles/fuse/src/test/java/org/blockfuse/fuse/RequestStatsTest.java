package org.blockfuse.fuse;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.ExportStatistics;
import org.blockfuse.api.LatencyDistribution;
import org.blockfuse.api.RequestHandler;
import org.blockfuse.fuse.FuseAbi.Op;
import org.blockfuse.nativeio.Errno;
import org.junit.jupiter.api.Test;

class RequestStatsTest {

    @Test
    void countsOpcodesBytesAndErrnosExactly() {
        RequestStats s = new RequestStats(true);
        for (int i = 0; i < 10; i++) {
            s.begin();
            s.end(Op.READ, 4096, 4096, System.nanoTime());
        }
        s.begin();
        s.end(Op.READ, -Errno.EIO, 0, System.nanoTime());
        s.begin();
        s.end(Op.WRITE, 8, 65536, System.nanoTime());
        s.begin();
        s.end(Op.FSYNC, -Errno.ENOSPC, 0, System.nanoTime());
        s.begin();
        s.end(Op.FORGET, RequestHandler.NO_REPLY, 0, System.nanoTime()); // no reply is no error
        s.begin();
        s.end(4000, -Errno.ENOSYS, 0, System.nanoTime()); // an opcode we do not know
        ExportStatistics st = s.snapshot("t", -1, 3, List.of());
        assertEquals(15, st.requests());
        assertEquals(11, st.reads());
        assertEquals(10 * 4096, st.bytesRead());
        assertEquals(1, st.writes());
        assertEquals(65536, st.bytesWritten());
        assertEquals(1L, st.errors().get("EIO"));
        assertEquals(1L, st.errors().get("ENOSPC"));
        assertEquals(1L, st.errors().get("ENOSYS"));
        assertEquals(3, st.errorCount());
        assertEquals(1L, st.byOpcode().get("other"));
        assertEquals(1L, st.byOpcode().get("FORGET"));
        assertEquals(0, st.inFlight());
        assertEquals(1, st.peakInFlight());
        assertEquals(3, st.passthroughOpens());
        assertEquals(15, st.latency().count());
        assertEquals(1, s.errors(Errno.EIO));
    }

    @Test
    void latencyCountsFromArrivalWithOnePercentPrecision() {
        RequestStats s = new RequestStats(true);
        long[] micros = {10, 20, 30, 40, 50, 60, 70, 80, 90, 1000};
        for (long us : micros) {
            s.begin();
            s.end(Op.READ, 0, 0, System.nanoTime() - TimeUnit.MICROSECONDS.toNanos(us));
        }
        LatencyDistribution l = s.snapshot("t", 0, 0, List.of()).latency();
        assertEquals(10, l.count());
        // end() reads the clock after arrival: each value is at least what it was given, and only a little more
        assertTrue(l.valueAtPercentile(50) >= 50_000 * 0.99 && l.valueAtPercentile(50) < 5_000_000, "p50 " + l.valueAtPercentile(50));
        assertTrue(l.max() >= 1_000_000 * 0.99, "max " + l.max());
        assertTrue(l.valueAtPercentile(90) >= 90_000 * 0.99, "p90 " + l.valueAtPercentile(90));
    }

    @Test
    void anIntervalIsTheDifferenceOfTwoSnapshots() {
        RequestStats s = new RequestStats(true);
        for (int i = 0; i < 100; i++) {
            s.begin();
            s.end(Op.READ, 0, 0, System.nanoTime() - 1_000);
        }
        LatencyDistribution first = s.snapshot("t", 0, 0, List.of()).latency();
        for (int i = 0; i < 5; i++) {
            s.begin();
            s.end(Op.READ, 0, 0, System.nanoTime() - TimeUnit.MILLISECONDS.toNanos(10));
        }
        LatencyDistribution interval = s.snapshot("t", 0, 0, List.of()).latency().since(first);
        assertEquals(5, interval.count());
        assertTrue(interval.valueAtPercentile(1) >= TimeUnit.MILLISECONDS.toNanos(10) * 0.99,
                "only the slow ones: " + interval.valueAtPercentile(1));
    }

    @Test
    void manyThreadsAddUpExactlyAndEndedThreadsAreForgotten() throws Exception {
        RequestStats s = new RequestStats(true);
        int threads = 8;
        int each = 50_000;
        List<Thread> all = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            Thread th = new Thread(() -> {
                for (int i = 0; i < each; i++) {
                    long at = System.nanoTime();
                    s.begin();
                    s.end(Op.WRITE, 8, 512, at);
                }
            });
            all.add(th);
            th.start();
        }
        for (int round = 0; round < 20; round++) {
            s.fold(); // folding while they record loses nothing
        }
        for (Thread th : all) {
            th.join();
        }
        ExportStatistics st = s.snapshot("t", 0, 0, List.of());
        assertEquals((long) threads * each, st.writes());
        assertEquals((long) threads * each * 512, st.bytesWritten());
        assertEquals((long) threads * each, st.latency().count());
        assertEquals(0, st.inFlight());
        assertTrue(st.peakInFlight() >= 1 && st.peakInFlight() <= threads, "peak " + st.peakInFlight());
        assertEquals(0, s.recordingThreads(), "every thread has ended, so none keeps a recorder");
    }

    @Test
    void offRecordsNothing() {
        RequestStats s = new RequestStats(false);
        assertFalse(s.enabled());
        ExportStatistics st = s.snapshot("t", 42, 0, List.of());
        assertFalse(st.enabled());
        assertEquals(42, st.requests(), "with statistics off the connection's own count is reported");
    }
}
