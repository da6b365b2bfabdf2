package org.blockfuse.export.internal;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.RequestStats;
import org.blockfuse.nativeio.Errno;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One configured export and what became of it: a small state machine (starting, active,
 * waiting, failed, stopping) with a bounded history of its changes. Changed only on the manager's
 * worker thread; read from any thread. Every change wakes whoever waits on {@link #changes}.
 */
final class ExportLifecycle {
    private static final Logger LOG = LoggerFactory.getLogger(ExportLifecycle.class);
    static final String STARTING = "starting";
    static final String ACTIVE = "active";
    static final String FAILED = "failed";
    static final String WAITING = "waiting";
    static final String STOPPING = "stopping";
    private static final int HISTORY = 32;
    private static final long MINUTE_NANOS = 60_000_000_000L;

    /** One state change, for the operator. */
    record Change(Instant at, String from, String to, String why) {
    }

    /** One change of transport while the export stayed up: how it was done and how long it took. */
    record Switch(Instant at, String from, String to, String why, String how, long millis) {
        @Override
        public String toString() {
            return at + "  " + from + " -> " + to + "  " + why + "; " + how + ", " + millis + " ms";
        }
    }

    final String pid;
    final ExportSpec spec;
    private volatile String state = STARTING;
    private volatile String detail = "";
    volatile FuseExport live;
    volatile String transport = "";
    /** When automatic restarts happened (nanoTime), for the limit; worker thread only. */
    final ArrayDeque<Long> restarts = new ArrayDeque<>();
    /** Bumped by every start and stop: a restart scheduled before either is stale and does nothing. */
    long epoch;
    private final ArrayDeque<Change> history = new ArrayDeque<>();
    private final ArrayDeque<Switch> switches = new ArrayDeque<>();
    /** Shared by every lifecycle of one manager: waiters (the shell's add/remove) wait here. */
    private final Object changes;
    /** Every request of every connection this configuration has had (off: the statistics key). */
    final RequestStats stats;
    /** restarts.size(), readable from any thread. */
    volatile int restartsInWindow;
    /** (nanoTime, I/O errors so far) samples of the last minute, oldest first; monitor thread only. */
    private final ArrayDeque<long[]> errorSamples = new ArrayDeque<>();
    private volatile long ioErrorsLastMinute;

    ExportLifecycle(String pid, ExportSpec spec, Object changes) {
        this.pid = pid;
        this.spec = spec;
        this.changes = changes;
        this.stats = new RequestStats(!"off".equals(spec.options().get("statistics")));
        record(null, STARTING, "configured");
    }

    String state() {
        return state;
    }

    String detail() {
        return detail;
    }

    boolean is(String s) {
        return state.equals(s);
    }

    /** Moves to {@code to}; logs one line when the state itself changes. */
    void moveTo(String to, String why) {
        String from = state;
        state = to;
        detail = why;
        if (!from.equals(to)) {
            record(from, to, why);
        }
        synchronized (changes) {
            changes.notifyAll();
        }
    }

    /** Changes only the detail (e.g. "restart 2/5 in 2 s"), not the state. */
    void explain(String why) {
        detail = why;
        synchronized (changes) {
            changes.notifyAll();
        }
    }

    private void record(String from, String to, String why) {
        synchronized (history) {
            if (history.size() == HISTORY) {
                history.removeFirst();
            }
            history.addLast(new Change(Instant.now(), from, to, why));
        }
        if (from != null && !to.equals(FAILED)) { // failures are logged at ERROR by the manager
            LOG.info("export {}: {} -> {}{}", spec.name(), from, to, why.isEmpty() ? "" : " (" + why + ")");
        }
    }

    void switched(String from, String to, String why, String how, long millis) {
        Switch s = new Switch(Instant.now(), from, to, why, how, millis);
        synchronized (switches) {
            if (switches.size() == HISTORY) {
                switches.removeFirst();
            }
            switches.addLast(s);
        }
        transport = to;
        LOG.info("export {}: transport {} -> {} ({}; {}, {} ms)", spec.name(), from, to, why, how, millis);
        synchronized (changes) {
            changes.notifyAll();
        }
    }

    List<Switch> switches() {
        synchronized (switches) {
            return new ArrayList<>(switches);
        }
    }

    List<Change> history() {
        synchronized (history) {
            return new ArrayList<>(history);
        }
    }

    /**
     * Monitor thread, every few seconds: folds the latency recorders (so ended transport threads
     * are forgotten) and samples the I/O error count for {@link #ioErrorsLastMinute()}.
     */
    void sample(long nowNanos) {
        stats.fold();
        FuseExport l = live;
        long errors;
        if (stats.enabled()) {
            errors = stats.errors(Errno.EIO) + stats.errors(Errno.ENOSPC);
        } else {
            errors = l == null ? 0 : l.ioErrors();
        }
        errorSamples.addLast(new long[] {nowNanos, errors});
        while (errorSamples.size() > 1 && nowNanos - errorSamples.peekFirst()[0] > MINUTE_NANOS) {
            errorSamples.pollFirst();
        }
        ioErrorsLastMinute = Math.max(0, errors - errorSamples.peekFirst()[1]);
    }

    /** EIO and ENOSPC replies within the last minute, as of the last {@link #sample}. */
    long ioErrorsLastMinute() {
        return ioErrorsLastMinute;
    }

    ExportInfo info() {
        FuseExport l = live;
        long size = l == null ? -1 : l.backend().size();
        String t = l == null ? transport : transport + " (" + l.session().describe() + ")"
                + (l.passthrough().startsWith("on") ? " + passthrough" : "");
        // a network backend says how it reaches its server (connections up, reconnecting) while active
        String how = l == null || !detail.isEmpty() ? "" : l.backend().describeConnection();
        return new ExportInfo(spec.name(), spec.image(), spec.format(), size, spec.mountpoint(), t,
                spec.writable(), spec.growable(), state, how.isEmpty() ? detail : how);
    }
}
