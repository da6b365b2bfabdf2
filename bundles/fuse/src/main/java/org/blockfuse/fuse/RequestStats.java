package org.blockfuse.fuse;

import java.time.Instant;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.SingleWriterRecorder;
import org.blockfuse.api.ExportStatistics;
import org.blockfuse.api.LatencyDistribution;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.nativeio.Errno;

/**
 * The request statistics of one export, kept across its connections (restarts, switches).
 * Written by every transport thread at once, so the hot path takes no lock and allocates
 * nothing: counters are {@link LongAdder}s (striped per thread under contention), and each
 * thread records latencies into its own HdrHistogram {@link SingleWriterRecorder} (wait-free,
 * found through a {@link ThreadLocal}). Readers fold every thread's interval into one
 * cumulative histogram under this object's lock; a thread that has ended is folded one last
 * time and forgotten, so transport threads that come and go leave nothing behind.
 */
public final class RequestStats {
    /** Latencies above this (a minute) are recorded as a minute: HdrHistogram needs a bound. */
    static final long MAX_TRACKED_NANOS = TimeUnit.MINUTES.toNanos(1);
    /** Two significant digits: 1 % precision, about 40 KiB per recording thread. */
    private static final int DIGITS = 2;
    private static final int OPCODES = 64;
    private static final int ERRNOS = 134;

    private final Instant since = Instant.now();
    private final boolean enabled;
    private final LongAdder[] byOpcode = adders(OPCODES + 1); // the last slot: opcodes above 63
    private final LongAdder[] byErrno = adders(ERRNOS + 1);   // the last slot: errnos above 133
    private final LongAdder bytesRead = new LongAdder();
    private final LongAdder bytesWritten = new LongAdder();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger peakInFlight = new AtomicInteger();
    private final ThreadLocal<Slot> slots = ThreadLocal.withInitial(this::newSlot);
    private final Queue<Slot> threads = new ConcurrentLinkedQueue<>();
    /** Every recorder's intervals so far; guarded by {@code this}. */
    private final Histogram cumulative = new Histogram(MAX_TRACKED_NANOS, DIGITS);

    /** @param enabled false: the handler records nothing (the export's {@code statistics = off}) */
    public RequestStats(boolean enabled) {
        this.enabled = enabled;
    }

    /** Whether requests are recorded at all. */
    public boolean enabled() {
        return enabled;
    }

    private static final class Slot {
        final Thread owner = Thread.currentThread();
        final SingleWriterRecorder recorder = new SingleWriterRecorder(MAX_TRACKED_NANOS, DIGITS);
        /** The recorder's previous interval, handed back for reuse (a recorder takes only its own). */
        Histogram spare; // guarded by the RequestStats
    }

    private static LongAdder[] adders(int n) {
        LongAdder[] a = new LongAdder[n];
        for (int i = 0; i < n; i++) {
            a[i] = new LongAdder();
        }
        return a;
    }

    private Slot newSlot() {
        Slot s = new Slot();
        threads.add(s);
        return s;
    }

    /** A request starts being served; pair with {@link #end}. */
    public void begin() {
        int now = inFlight.incrementAndGet();
        int peak = peakInFlight.get();
        while (now > peak && !peakInFlight.compareAndSet(peak, now)) {
            peak = peakInFlight.get();
        }
    }

    /**
     * A request was answered.
     * @param result       the reply length, a negative errno, or {@link org.blockfuse.api.RequestHandler#NO_REPLY}
     * @param bytes        data bytes moved (READ: the reply's length, WRITE: bytes written), else 0
     * @param arrivedNanos {@link System#nanoTime()} when the request reached blockfuse
     */
    public void end(int opcode, int result, int bytes, long arrivedNanos) {
        long nanos = System.nanoTime() - arrivedNanos;
        byOpcode[opcode >= 0 && opcode < OPCODES ? opcode : OPCODES].increment();
        if (result < 0 && result != org.blockfuse.api.RequestHandler.NO_REPLY) {
            int errno = -result;
            byErrno[errno < ERRNOS ? errno : ERRNOS].increment();
        } else if (bytes > 0) {
            (opcode == FuseAbi.Op.WRITE ? bytesWritten : bytesRead).add(bytes);
        }
        slots.get().recorder.recordValue(Math.max(0, Math.min(nanos, MAX_TRACKED_NANOS)));
        inFlight.decrementAndGet(); // last: once nothing is in flight, every finished request is in every figure
    }

    /**
     * Folds every thread's latencies recorded since the last fold into the cumulative histogram and
     * forgets threads that have ended. Readers call it; the export manager also calls it now and
     * then so the recorders of short-lived threads never pile up.
     */
    public synchronized void fold() {
        for (Iterator<Slot> it = threads.iterator(); it.hasNext(); ) {
            Slot s = it.next();
            boolean ended = !s.owner.isAlive(); // read before the fold: its last values are then in it
            s.spare = s.recorder.getIntervalHistogram(s.spare);
            cumulative.add(s.spare);
            if (ended) {
                it.remove();
            }
        }
    }

    /** Error replies with {@code errno} so far. */
    public long errors(int errno) {
        return byErrno[errno >= 0 && errno < ERRNOS ? errno : ERRNOS].sum();
    }

    /** Threads with a recorder now (for tests: ended ones go at the next fold). */
    public int recordingThreads() {
        return threads.size();
    }

    /**
     * A snapshot of everything so far.
     * @param requests          the serving connection's request count, reported when statistics are off
     * @param passthroughOpens  opens answered with FUSE passthrough
     * @param queues            the serving transport's queues now
     */
    public ExportStatistics snapshot(String name, long requests, long passthroughOpens, List<QueueStatistics> queues) {
        Histogram copy;
        synchronized (this) {
            fold();
            copy = cumulative.copy();
        }
        Map<String, Long> ops = new LinkedHashMap<>();
        for (int i = 0; i <= OPCODES; i++) {
            long n = byOpcode[i].sum();
            if (n > 0) {
                ops.put(i == OPCODES ? "other" : FuseAbi.Op.name(i), n);
            }
        }
        Map<String, Long> errors = new LinkedHashMap<>();
        for (int i = 0; i <= ERRNOS; i++) {
            long n = byErrno[i].sum();
            if (n > 0) {
                errors.put(i == ERRNOS ? "other" : Errno.name(i), n);
            }
        }
        long total = enabled ? ops.values().stream().mapToLong(Long::longValue).sum() : requests;
        return new ExportStatistics(name, since, enabled, total, ops, ops.getOrDefault("READ", 0L), bytesRead.sum(),
                ops.getOrDefault("WRITE", 0L), bytesWritten.sum(), errors, Math.max(0, inFlight.get()),
                peakInFlight.get(), new Latencies(copy), passthroughOpens, queues);
    }

    /** An immutable latency distribution over one histogram copy. */
    static final class Latencies implements LatencyDistribution {
        private final Histogram h;

        Latencies(Histogram h) {
            this.h = h;
        }

        @Override
        public long count() {
            return h.getTotalCount();
        }

        @Override
        public long valueAtPercentile(double percentile) {
            return h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(percentile);
        }

        @Override
        public long max() {
            return h.getTotalCount() == 0 ? 0 : h.getMaxValue();
        }

        @Override
        public LatencyDistribution since(LatencyDistribution earlier) {
            if (!(earlier instanceof Latencies)) {
                throw new IllegalArgumentException("not a snapshot of this distribution: " + earlier);
            }
            Histogram d = h.copy();
            d.subtract(((Latencies) earlier).h);
            return new Latencies(d);
        }
    }
}
