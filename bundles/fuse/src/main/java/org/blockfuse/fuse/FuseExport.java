package org.blockfuse.fuse;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.ConnectionDetails;
import org.blockfuse.api.ExportStatistics;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.api.TransportSession;
import org.blockfuse.fuse.internal.ExportHandler;
import org.blockfuse.fuse.internal.FuseConnection;
import org.blockfuse.fuse.internal.InitNegotiation;
import org.blockfuse.fuse.internal.OpenFiles;
import org.blockfuse.fuse.internal.SharedBackend;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A mounted export: its backend, its mountpoint, and the connection serving the path now, plus
 * any earlier connection still draining its open files after a transport fallback. Started and
 * stopped in the one safe order. Owns the backend from {@link #start} on; each connection holds
 * it too, so the image is closed only when the last of them is gone.
 */
public final class FuseExport implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(FuseExport.class);
    /** How long clients that still hold the file open get to finish before the connection is aborted. */
    public static final long DRAIN_MILLIS = 10_000;
    /** The default for how long files opened before a fallback keep their old connection. */
    public static final long DRAIN_GRACE_MILLIS = 30_000;
    /** How long an aborted connection's threads get to end. */
    private static final long ABORT_GRACE_MILLIS = 10_000;

    private final String name;
    private final SharedBackend backend;
    private final MountPoint mountPoint;
    private final ExportPolicy policy;
    private final String source;
    private final Map<String, String> options;
    private final HaltListener onHalt;
    private final RequestStats stats;
    /** The connection new opens reach. */
    private volatile FuseConnection current;
    private final List<Drain> draining = new CopyOnWriteArrayList<>();
    /** Replaced connections that had to be cut off at the end of their grace (files still open). */
    private final java.util.concurrent.atomic.AtomicInteger cutOff = new java.util.concurrent.atomic.AtomicInteger();
    private boolean closed;

    /** Told when a connection halts; the generation says which connection (an export has one after another). */
    public interface HaltListener {
        void halted(long generation, String reason);
    }

    /** A connection replaced at the path, serving its open files until they close or the grace ends. */
    private record Drain(FuseConnection connection, Thread thread) {
    }

    /** What a switch of connection did: the connections before and after, and how long new opens waited. */
    public record Replacement(int oldConnection, int newConnection, long stallMillis) {
    }

    private FuseExport(String name, SharedBackend backend, MountPoint mountPoint, ExportPolicy policy, String source,
            Map<String, String> options, HaltListener onHalt, RequestStats stats) {
        this.name = name;
        this.stats = stats;
        this.backend = backend;
        this.mountPoint = mountPoint;
        this.policy = policy;
        this.source = source;
        this.options = Map.copyOf(options);
        this.onHalt = onHalt;
    }

    public static FuseExport start(String name, BlockBackend backend, Path target, ExportPolicy policy,
            String source, Map<String, String> options, FuseTransport transport, Consumer<String> onHalt)
            throws IOException {
        return start(name, backend, target, policy, source, options, transport, (generation, reason) -> onHalt.accept(reason));
    }

    public static FuseExport start(String name, BlockBackend backend, Path target, ExportPolicy policy,
            String source, Map<String, String> options, FuseTransport transport, HaltListener onHalt)
            throws IOException {
        return start(name, backend, target, policy, source, options, transport, onHalt, new RequestStats(true));
    }

    /**
     * Mounts {@code backend} on {@code target} and serves it with {@code transport}; returns only
     * after a real GETATTR went through the new mount. On failure everything is undone, the backend closed.
     * @param stats where every connection of this export records its requests (the caller may keep
     *              it across exports of one configuration, so restarts do not reset the figures)
     */
    public static FuseExport start(String name, BlockBackend backend, Path target, ExportPolicy policy,
            String source, Map<String, String> options, FuseTransport transport, HaltListener onHalt,
            RequestStats stats) throws IOException {
        SharedBackend shared = new SharedBackend(name, backend);
        MountPoint mp = null;
        try {
            mp = MountPoint.prepare(target);
            FuseExport export = new FuseExport(name, shared, mp, policy, source, options, onHalt, stats);
            FuseConnection conn = export.connect(transport, null);
            try {
                conn.placeOnto(mp);
            } catch (IOException | RuntimeException | Error e) {
                conn.stop(0);
                throw e;
            }
            export.current = conn;
            return export;
        } catch (IOException | RuntimeException | Error e) {
            // Error too: a bundle refreshed mid-start throws LinkageError; a mount must never stay unserved
            if (mp != null) {
                mp.release();
            }
            shared.release();
            throw e;
        }
    }

    /** A new connection, served by {@code transport} and probed, not yet placed at the path. */
    private FuseConnection connect(FuseTransport transport, ExportHandler previous) throws IOException {
        FuseConnection conn = FuseConnection.open(name, mountPoint.path(), source, policy, options, backend.retain(), previous,
                stats);
        try {
            conn.attach(transport);
            conn.probe();
        } catch (IOException | RuntimeException | Error e) {
            conn.stop(0);
            throw e;
        }
        long generation = conn.generation();
        conn.onHalt(reason -> onHalt.halted(generation, reason));
        return conn;
    }

    public String name() {
        return name;
    }

    public Path mountPoint() {
        return mountPoint.path();
    }

    public BlockBackend backend() {
        return backend.backend();
    }

    /** The generation of the connection serving the path (unique in this JVM). */
    public long generation() {
        return current.generation();
    }

    /** The FUSE connection number (fusectl's N) serving the path. */
    public int connectionId() {
        return current.connectionId();
    }

    /** Connections replaced at the path that still serve files opened before the switch. */
    public int draining() {
        draining.removeIf(d -> !d.thread().isAlive());
        return draining.size();
    }

    /** Requests served by the connection serving the path. */
    public long requests() {
        return current.exportHandler().requests();
    }

    /** Requests answered EIO because the backend failed, on the connection serving the path. */
    public long ioErrors() {
        return current.exportHandler().ioErrors();
    }

    /** Files open on the connection serving the path. */
    public int openFiles() {
        return current.exportHandler().openFiles();
    }

    /** Requests the kernel has sent the serving connection and not yet had answered (fusectl's "waiting"). */
    public int waiting() {
        return current.waiting();
    }

    public TransportSession session() {
        return current.session();
    }

    /** "on (backing id N)" when opens are passed through to the image, else "off". */
    public String passthrough() {
        return current.passthroughState();
    }

    /** Opens the serving connection answered with passthrough (their I/O never reaches a transport). */
    public long passthroughOpens() {
        return current.exportHandler().passthroughOpens();
    }

    /**
     * Who holds the export's file open now: "comm[pid] fd N" per open file on the serving
     * connection and on any connection still draining (from /proc; the files of other users'
     * processes are found too, as root sees every process).
     */
    public String openBy() {
        StringBuilder sb = new StringBuilder(OpenFiles.holders(current.mountId()));
        for (Drain d : draining) {
            if (d.thread().isAlive()) {
                sb.append("; draining connection ").append(d.connection().connectionId()).append(": ")
                        .append(OpenFiles.holders(d.connection().mountId()));
            }
        }
        return sb.toString();
    }

    /**
     * Whether an ordinary user's mount (through fusermount3) may ask for allow_other: only when
     * /etc/fuse.conf has {@code user_allow_other}.
     */
    public static boolean unprivilegedAllowOther() {
        return org.blockfuse.fuse.internal.Fusermount.userAllowOther();
    }

    /** The INIT flags the kernel offered at the latest INIT of any export in this JVM; -1 before the first. */
    public static long kernelOfferedFlags() {
        return InitNegotiation.lastOffered();
    }

    /** Everything this export's connections have served, and the serving transport's queues now. */
    public ExportStatistics statistics() {
        FuseConnection c = current;
        List<QueueStatistics> queues = c.session() == null ? List.of() : c.session().queues();
        return stats.snapshot(name, c.exportHandler().requests(), c.exportHandler().passthroughOpens(), queues);
    }

    /** The statistics this export records into. */
    public RequestStats requestStats() {
        return stats;
    }

    /** What the kernel and blockfuse agreed for the serving connection. */
    public ConnectionDetails details() {
        FuseConnection c = current;
        InitNegotiation.Result init = c.init();
        TransportSession s = c.session();
        return new ConnectionDetails(c.connectionId(), init.minor(), init.maxWrite(), init.maxPages(),
                FuseAbi.InitFlags.names(init.flags()), s == null ? "" : s.transport(), s == null ? "" : s.describe(),
                c.passthroughState(), draining(), c.exportHandler().openFiles(), c.waiting(),
                s == null ? List.of() : s.queues());
    }

    /** Ends the serving connection at once, as an operator's abort through fusectl would. */
    public void abort() {
        current.abort();
    }

    /** Halts the serving connection if it is no longer in the mount table ({@link MountTable#anonymousMinors()}). */
    public void checkMounted(java.util.Set<Integer> mountedMinors) {
        current.checkMounted(mountedMinors);
    }

    /**
     * Moves the live connection to {@code transport} without unmounting (legacy to io_uring).
     * The previous session keeps reading /dev/fuse: requests it already took are answered there,
     * and closing its fds early could hand a reply to a reused fd number.
     */
    public synchronized void join(FuseTransport transport) throws IOException {
        if (closed) {
            throw new IOException(name + " is closed");
        }
        TransportSession next = current.attach(transport);
        LOG.info("{}: now served by {} ({}), live, same connection {}", name, transport.name(), next.describe(),
                current.connectionId());
    }

    /**
     * Serves the path with a new connection on {@code transport} (the way back from io_uring, which
     * the kernel cannot move back to /dev/fuse): the new one is mounted beneath the current one,
     * which is then detached, so new opens land on the new connection at once while files already
     * open keep their old connection, served by its old transport, until they are closed or
     * {@code graceMillis} ends; then the old connection is aborted and the files still open are named
     * in the log. If the new connection cannot be set up, the current one keeps serving as before.
     */
    public synchronized Replacement replace(FuseTransport transport, long graceMillis) throws IOException {
        if (closed) {
            throw new IOException(name + " is closed");
        }
        FuseConnection old = current;
        FuseConnection next = connect(transport, old.exportHandler());
        long started = System.nanoTime();
        try {
            next.placeBeneath(old);
        } catch (IOException | RuntimeException | Error e) {
            next.stop(0);
            throw e;
        }
        current = next;
        long stall = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
        Thread t = new Thread(() -> drain(old, graceMillis), "blockfuse-" + name + "-drain-c" + old.connectionId());
        t.setDaemon(true);
        draining.add(new Drain(old, t));
        t.start();
        LOG.info("{}: now served by {} ({}) on new connection {}; connection {} drains its open files (grace {} s)", name,
                transport.name(), next.session().describe(), next.connectionId(), old.connectionId(), graceMillis / 1000);
        return new Replacement(old.connectionId(), next.connectionId(), stall);
    }

    /** The old connection ends by itself when its last open file closes; at the end of the grace it is cut. */
    private void drain(FuseConnection old, long graceMillis) {
        org.slf4j.MDC.put(ExportHandler.MDC_EXPORT, name);
        try {
            if (!old.awaitStopped(graceMillis)) {
                cutOff.incrementAndGet();
                LOG.warn("{}: grace of {} s over; cutting off connection {} with files still open by: {}", name,
                        graceMillis / 1000, old.connectionId(), OpenFiles.holders(old.mountId()));
            } else {
                LOG.info("{}: connection {} drained (every file opened before the switch is closed)", name,
                        old.connectionId());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        old.finish(0);
    }

    /** How many replaced connections were cut off at the end of their grace with files still open. */
    public int cutOff() {
        return cutOff.get();
    }

    /**
     * Waits, bounded, until every connection replaced so far has drained and released its
     * transports' threads (a departing transport's code must stop running before its bundle goes).
     * @return true if none is left
     */
    public boolean awaitDrained(long millis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        for (Drain d : draining) {
            d.thread().join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        }
        return draining() == 0;
    }

    /**
     * Unmounts (letting clients finish for up to {@link #DRAIN_MILLIS}), stops the transports of
     * every connection, flushes and closes the backend once no connection holds it, removes a
     * created mountpoint. A connection whose threads outlive the grace periods keeps its fd and
     * its hold on the backend (leaked with an error line) rather than have them closed under it.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        current.stop(DRAIN_MILLIS);
        for (Drain d : draining) {
            try {
                d.thread().join(DRAIN_MILLIS);
                if (d.thread().isAlive()) {
                    d.connection().abort(); // the drain then releases it
                    d.thread().join(ABORT_GRACE_MILLIS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                d.connection().abort();
            }
            if (d.thread().isAlive()) {
                LOG.error("{}: connection {} did not finish draining", name, d.connection().connectionId());
            }
        }
        backend.release();
        mountPoint.release();
        LOG.info("{}: unmounted {}", name, mountPoint.path());
    }
}
