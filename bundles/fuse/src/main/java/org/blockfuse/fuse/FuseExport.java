package org.blockfuse.fuse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.TransportSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A mounted export: backend, mountpoint, connection and the transport serving it, started and
 * stopped in the one safe order. Owns the backend from {@link #start} on.
 */
public final class FuseExport implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(FuseExport.class);
    /** How long clients that still hold the file open get to finish before the connection is aborted. */
    public static final long DRAIN_MILLIS = 10_000;
    private static final long PROBE_SECONDS = 10;
    private static final long ABORT_GRACE_MILLIS = 5_000;

    private final String name;
    private final BlockBackend backend;
    private final MountPoint mountPoint;
    private final FuseConnection connection;
    private final ExportHandler handler;
    /** The transport serving now; earlier ones stay attached as /dev/fuse readers until the end. */
    private volatile TransportSession session;
    private final java.util.List<TransportSession> retired = new java.util.concurrent.CopyOnWriteArrayList<>();
    private boolean closed;

    private FuseExport(String name, BlockBackend backend, MountPoint mountPoint, FuseConnection connection,
            ExportHandler handler, TransportSession session) {
        this.name = name;
        this.backend = backend;
        this.mountPoint = mountPoint;
        this.connection = connection;
        this.handler = handler;
        this.session = session;
    }

    /**
     * Mounts {@code backend} on {@code target} and serves it with {@code transport}; returns only
     * after a real GETATTR went through the mount. On failure everything is undone, the backend closed.
     */
    public static FuseExport start(String name, BlockBackend backend, Path target, ExportPolicy policy,
            String source, Map<String, String> options, FuseTransport transport, Consumer<String> onHalt)
            throws IOException {
        return start(name, backend, target, policy, source, options, transport, (generation, reason) -> onHalt.accept(reason));
    }

    /** Told when a connection halts; the generation says which connection (an export has one after another). */
    public interface HaltListener {
        void halted(long generation, String reason);
    }

    /** As above; {@code onHalt} also learns which connection generation halted. */
    public static FuseExport start(String name, BlockBackend backend, Path target, ExportPolicy policy,
            String source, Map<String, String> options, FuseTransport transport, HaltListener onHalt)
            throws IOException {
        MountPoint mp = null;
        FuseConnection conn = null;
        TransportSession session = null;
        ExportHandler[] handler = new ExportHandler[1];
        try {
            mp = MountPoint.prepare(target);
            conn = FuseConnection.mount(name, mp, source, policy.allowOther(), options,
                    guard -> handler[0] = new ExportHandler(name, backend, policy, guard));
            // the handler enforces the negotiated sizes: a larger READ/WRITE is a protocol violation
            handler[0].negotiated(conn.init(), FuseConnection.DEFAULT_MAX_WRITE);
            long generation = conn.generation();
            conn.onHalt(reason -> onHalt.halted(generation, reason));
            session = transport.attach(conn);
            FuseExport export = new FuseExport(name, backend, mp, conn, handler[0], session);
            export.probe();
            return export;
        } catch (IOException | RuntimeException | Error e) {
            // Error too: a bundle refreshed mid-start throws LinkageError; a mount must never stay unserved
            release(name, conn, backend, stop(name, conn, session));
            if (mp != null) {
                mp.release();
            }
            throw e;
        }
    }

    /**
     * Mount, then probe: the size seen through the mount must be the backend's. The stat runs on
     * a helper thread and is bounded: a transport that never answers fails the start (which then
     * aborts the connection, releasing the helper) instead of hanging it.
     */
    private void probe() throws IOException {
        long seen;
        try {
            seen = MountStat.size(mountPoint.path(), PROBE_SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new MountException("probe of " + mountPoint.path() + ": no answer through the mount within "
                    + PROBE_SECONDS + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MountException("probe of " + mountPoint.path() + " interrupted");
        } catch (IOException e) {
            throw new MountException("probe of " + mountPoint.path() + " failed: " + e, e);
        }
        if (seen != backend.size()) {
            throw new MountException("probe of " + mountPoint.path() + " saw " + seen + " bytes, expected "
                    + backend.size());
        }
    }

    public String name() {
        return name;
    }

    public Path mountPoint() {
        return mountPoint.path();
    }

    public BlockBackend backend() {
        return backend;
    }

    public FuseConnection connection() {
        return connection;
    }

    /** The generation of this export's connection (unique in this JVM). */
    public long generation() {
        return connection.generation();
    }

    public ExportHandler handler() {
        return handler;
    }

    public TransportSession session() {
        return session;
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
        TransportSession next = transport.attach(connection);
        retired.add(session);
        session = next;
        LOG.info("{}: now served by {} ({}), live, same connection", name, transport.name(), next.describe());
    }

    /**
     * Unmounts (draining clients), stops the transports, flushes and closes the backend, removes a
     * created mountpoint. Nothing is closed while a thread may still use it: if a transport thread
     * is still running after the grace periods (stuck in the kernel or the backend), the device fd
     * and the backend are leaked with an error line, because a reused fd number would carry that
     * thread's late reply or pwrite into some other export's device or image.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        boolean stopped = stop(name, connection, session);
        for (TransportSession old : retired) {
            try {
                if (!old.awaitStopped(ABORT_GRACE_MILLIS)) {
                    LOG.error("{}: {} threads did not stop", name, old.transport());
                    stopped = false;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                stopped = false;
            }
            old.close();
        }
        release(name, connection, backend, stopped);
        mountPoint.release();
        LOG.info("{}: unmounted {}", name, mountPoint.path());
    }

    /** Closes the device fd and the backend, or leaks both when a thread may still use them. */
    private static void release(String name, FuseConnection conn, BlockBackend backend, boolean stopped) {
        if (stopped) {
            if (conn != null) {
                conn.closeDevice();
            }
            closeQuietly(name, backend);
        } else {
            LOG.error("{}: a transport thread is still running; leaking the /dev/fuse fd{} and the open image "
                    + "rather than let their numbers be reused under it", name,
                    conn == null ? "" : " " + conn.deviceFd());
        }
    }

    /**
     * Unmounts and waits (bounded) for the session's threads, aborting the connection if they do
     * not end; closes the session (which frees only what its stopped threads owned).
     * @return true if every thread of the session has ended
     */
    private static boolean stop(String name, FuseConnection conn, TransportSession session) {
        if (conn == null) {
            return true;
        }
        boolean gone = conn.unmount();
        boolean stopped = session == null;
        try {
            if (session != null) {
                stopped = session.awaitStopped(gone ? ABORT_GRACE_MILLIS : DRAIN_MILLIS);
                if (!stopped) {
                    LOG.warn("{}: transport still busy after unmount; aborting the connection", name);
                    conn.abort();
                    stopped = session.awaitStopped(ABORT_GRACE_MILLIS);
                    if (!stopped) {
                        LOG.error("{}: transport threads did not stop within {} ms after abort", name,
                                ABORT_GRACE_MILLIS);
                    }
                }
            } else {
                conn.abort();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            conn.abort();
        } finally {
            if (session != null) {
                session.close();
            }
        }
        return stopped;
    }

    private static void closeQuietly(String name, BlockBackend backend) {
        try {
            backend.close();
        } catch (IOException e) {
            LOG.error("{}: closing the image failed: {}", name, e.toString());
        }
    }
}
