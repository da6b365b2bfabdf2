package org.blockfuse.fuse.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.RequestHandler;
import org.blockfuse.api.TransportSession;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.MountException;
import org.blockfuse.fuse.MountPoint;
import org.blockfuse.fuse.RequestStats;
import org.blockfuse.fuse.MountTable;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.MountApi;
import org.blockfuse.nativeio.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One FUSE connection and everything that lives exactly as long as it: the /dev/fuse fd, the
 * negotiated INIT, the request handler, the /dev/fuse reader every transport needs (INIT's
 * leftovers, INTERRUPT and FORGET arrive there even under io_uring), the transport sessions
 * attached to it, and a hold on the backend. Transports own only their threads, rings and buffers.
 *
 * <p>Made in three steps so that nothing is visible before it works: {@link #open} creates a
 * detached mount and answers INIT, the caller attaches a transport and {@link #probe}s through the
 * detached mount, then {@link #placeOnto} or {@link #placeBeneath} puts it at the path.
 */
public final class FuseConnection implements FuseChannel {
    private static final Logger LOG = LoggerFactory.getLogger(FuseConnection.class);
    private static final Path CONNECTIONS = Path.of("/sys/fs/fuse/connections");
    public static final String SUBTYPE = "blockfuse";
    public static final int DEFAULT_MAX_WRITE = 1 << 20;
    static final long ABORT_GRACE_MILLIS = 5_000;
    private static final long PROBE_SECONDS = 10;
    private static final AtomicLong GENERATIONS = new AtomicLong();

    private final String name;
    private final Path target;
    private final int fd;
    private final int connectionId;
    private final InitNegotiation.Result init;
    private final ExportHandler handler;
    private final Map<String, String> options;
    private final SharedBackend backend;
    /** Unique per connection in this JVM: events from an earlier connection can be told apart. */
    private final long generation = GENERATIONS.incrementAndGet();
    private final AtomicBoolean halted = new AtomicBoolean();
    private final AtomicBoolean unmounted = new AtomicBoolean();
    /** Set once the export itself ends the connection: the ENODEV/ECONNABORTED that follow are expected. */
    private volatile boolean ending;
    private volatile Consumer<String> haltListener = reason -> { };
    /** The detached mount until it is placed (or dropped); -1 after. */
    private int mountFd;
    /** Mounted by fusermount3 (no CAP_SYS_ADMIN): already at the path from the start. */
    private final boolean helperMounted;
    /** The mount's id (mountinfo's first field, fdinfo's mnt_id), to find who still has files open on it. */
    private final int mountId;
    private final Thread reader;
    /** Every session ever attached, in order; the last one serves. Earlier ones keep reading until the end. */
    private final List<TransportSession> sessions = new CopyOnWriteArrayList<>();
    private boolean released;
    /** The image's backing id on this connection (FUSE passthrough), or 0. */
    private int backingId;
    /** "on (backing id N)" or "off: why", for the operator. */
    private String passthroughState = "off";

    private FuseConnection(String name, Path target, int fd, int mountFd, int connectionId, InitNegotiation.Result init,
            ExportPolicy policy, Map<String, String> options, SharedBackend backend, ExportHandler previous,
            RequestStats stats) {
        this(name, target, fd, mountFd, OpenFiles.mountIdOf(mountFd), connectionId, init, policy, options, backend,
                previous, stats);
    }

    private FuseConnection(String name, Path target, int fd, int mountFd, int mountId, int connectionId,
            InitNegotiation.Result init, ExportPolicy policy, Map<String, String> options, SharedBackend backend,
            ExportHandler previous, RequestStats stats) {
        this.name = name;
        this.target = target;
        this.fd = fd;
        this.mountFd = mountFd;
        this.helperMounted = mountFd < 0;
        this.mountId = mountId;
        this.connectionId = connectionId;
        this.init = init;
        this.options = Map.copyOf(options);
        this.backend = backend;
        this.handler = new ExportHandler(name, backend.backend(), policy, this::halt, stats);
        // the handler enforces the negotiated sizes: a larger READ/WRITE is a protocol violation
        handler.negotiated(init, DEFAULT_MAX_WRITE);
        if (previous != null) {
            handler.takeOwnershipFrom(previous); // a chmod/chown survives a switch of connection
        }
        this.reader = new Thread(new DeviceLoop(this, fd), "blockfuse-" + name + "-c" + generation + "-dev");
        reader.setDaemon(true);
    }

    /**
     * Opens /dev/fuse, creates a detached mount of it and answers INIT; the reader of the
     * connection's /dev/fuse fd is running when this returns. Takes over one hold on
     * {@code backend} (released when the connection is released). On failure nothing stays
     * open or mounted and the hold is given back.
     * @param previous the handler of the connection this one replaces, or null
     * @param stats    the export's statistics, which outlive its connections
     */
    public static FuseConnection open(String name, Path target, String source, ExportPolicy policy,
            Map<String, String> options, SharedBackend backend, ExportHandler previous, RequestStats stats)
            throws IOException {
        if (Libc.geteuid() != 0) {
            return openThroughHelper(name, target, source, policy, options, backend, previous, stats);
        }
        int fd = -1;
        int mountFd = -1;
        boolean ok = false;
        try {
            fd = Libc.open("/dev/fuse", Libc.O_RDWR | Libc.O_CLOEXEC, 0);
            try (MountApi.Context ctx = MountApi.open("fuse")) {
                ctx.set("source", source).set("subtype", SUBTYPE).set("fd", Integer.toString(fd))
                        .set("rootmode", "100000").set("user_id", Integer.toString(Libc.getuid()))
                        .set("group_id", Integer.toString(Libc.getgid())).flag("default_permissions")
                        .set("max_read", Integer.toString(DEFAULT_MAX_WRITE));
                if (policy.allowOther()) {
                    ctx.flag("allow_other");
                }
                mountFd = ctx.mount(MountApi.MOUNT_ATTR_NOSUID | MountApi.MOUNT_ATTR_NODEV);
            } catch (NativeException e) {
                throw new MountException("cannot mount " + target + ": " + e.getMessage(), e);
            }
            int id = MountApi.device(mountFd)[1];
            InitNegotiation.Result init = negotiate(fd, DEFAULT_MAX_WRITE, policy.passthrough());
            FuseConnection c = new FuseConnection(name, target, fd, mountFd, id, init, policy, options, backend, previous, stats);
            if (policy.passthrough()) {
                c.registerBackingFile();
            }
            c.reader.start();
            ok = true;
            LOG.info("{}: new FUSE connection {} (FUSE 7.{}, max_write {} KiB)", name, id, init.minor(),
                    init.maxWrite() >> 10);
            return c;
        } finally {
            if (!ok) {
                if (mountFd >= 0) {
                    Libc.close(mountFd); // never placed: dropping it ends the superblock, nobody reads it yet
                }
                if (fd >= 0) {
                    Libc.close(fd);
                }
                backend.release();
            }
        }
    }

    /**
     * Without CAP_SYS_ADMIN: fusermount3 mounts at the path and hands back the /dev/fuse fd (see
     * {@link Fusermount}). The mount is then visible before INIT is answered (clients wait for it),
     * and it cannot be placed beneath another one, so a switch that needs a new connection is refused.
     */
    private static FuseConnection openThroughHelper(String name, Path target, String source, ExportPolicy policy,
            Map<String, String> options, SharedBackend backend, ExportHandler previous, RequestStats stats)
            throws IOException {
        StringBuilder o = new StringBuilder("fsname=").append(source.replaceAll("[,\\\\]", "_"))
                .append(",subtype=").append(SUBTYPE).append(",default_permissions,nosuid,nodev,max_read=")
                .append(DEFAULT_MAX_WRITE);
        if (policy.allowOther()) {
            o.append(",allow_other");
        }
        int fd = -1;
        boolean ok = false;
        try {
            fd = Fusermount.mount(target, o.toString());
            InitNegotiation.Result init = negotiate(fd, DEFAULT_MAX_WRITE, false);
            int root = Libc.open(target.toString(), Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
            int id;
            int mountId;
            try {
                id = MountApi.device(root)[1];
                mountId = OpenFiles.mountIdOf(root);
            } finally {
                Libc.close(root);
            }
            FuseConnection c = new FuseConnection(name, target, fd, -1, mountId, id, init, policy, options, backend,
                    previous, stats);
            c.passthroughState = "off: registering a backing file needs CAP_SYS_ADMIN (root)";
            c.reader.start();
            ok = true;
            LOG.info("{}: new FUSE connection {} mounted by fusermount3 as uid {} (FUSE 7.{}, max_write {} KiB)", name, id,
                    Libc.geteuid(), init.minor(), init.maxWrite() >> 10);
            return c;
        } finally {
            if (!ok) {
                if (fd >= 0) {
                    Fusermount.unmount(target, true);
                    Libc.close(fd);
                }
                backend.release();
            }
        }
    }

    /**
     * Registers the image as this connection's backing file so that OPEN can answer with
     * passthrough. If the kernel does not allow it the connection serves every request itself and
     * {@link #passthroughState()} says why (an export that requires passthrough then fails).
     */
    private void registerBackingFile() {
        if (!init.passthrough()) {
            passthroughState = "off: the kernel did not offer FUSE_PASSTHROUGH at INIT (needs Linux 6.9 with "
                    + "CONFIG_FUSE_PASSTHROUGH)";
            LOG.warn("{}: FUSE passthrough {}", name, passthroughState);
            return;
        }
        int imageFd = backend.backend().passthroughFd();
        if (imageFd < 0) {
            passthroughState = "off: this image format cannot be passed through";
            return;
        }
        ByteBuffer map = ByteBuffer.allocateDirect(16).order(java.nio.ByteOrder.nativeOrder());
        map.putInt(0, imageFd).putInt(4, 0).putLong(8, 0);
        int r = Libc.ioctlValue(fd, org.blockfuse.fuse.FuseAbi.OpenOut.IOC_BACKING_OPEN, Libc.address(map));
        java.lang.ref.Reference.reachabilityFence(map);
        if (r <= 0) {
            passthroughState = "off: registering the image failed: " + Libc.strerror(-r)
                    + (r == -Errno.EPERM ? " (needs CAP_SYS_ADMIN)" : "");
            LOG.warn("{}: FUSE passthrough {}", name, passthroughState);
            return;
        }
        backingId = r;
        handler.passThrough(backingId);
        passthroughState = "on (backing id " + backingId + ")";
    }

    /** "on (backing id N)" or "off". */
    public String passthroughState() {
        return passthroughState;
    }

    private static InitNegotiation.Result negotiate(int fd, int wantWrite, boolean passthrough) throws IOException {
        ByteBuffer request = Libc.allocateAligned(wantWrite + InitNegotiation.PAGE, InitNegotiation.PAGE);
        ByteBuffer reply = Libc.allocateAligned(InitNegotiation.REPLY_LENGTH, 8);
        long n;
        do {
            n = Libc.read(fd, Libc.address(request), request.capacity());
        } while (n == -Errno.EINTR);
        if (n < 0) {
            throw new MountException("reading INIT from /dev/fuse failed: " + Libc.strerror((int) -n));
        }
        InitNegotiation.Result result = InitNegotiation.answer(request, (int) n, reply, wantWrite, passthrough);
        long w = Libc.write(fd, Libc.address(reply), InitNegotiation.REPLY_LENGTH);
        if (w < 0) {
            throw new MountException("the kernel refused our INIT reply: " + Libc.strerror((int) -w));
        }
        return result;
    }

    /** Starts {@code transport} on this connection; the one attached last serves, earlier ones keep reading. */
    public synchronized TransportSession attach(FuseTransport transport) throws IOException {
        if (released) {
            throw new IOException(name + ": connection " + connectionId + " is closed");
        }
        TransportSession s = transport.attach(this);
        sessions.add(s);
        return s;
    }

    /** The session serving now (the last attached), or null. */
    public TransportSession session() {
        return sessions.isEmpty() ? null : sessions.get(sessions.size() - 1);
    }

    public List<TransportSession> sessions() {
        return List.copyOf(sessions);
    }

    /**
     * A GETATTR through the still detached mount, bounded: the size must be the backend's. A
     * transport that never answers fails here (the caller then drops the connection) instead of
     * hanging the caller.
     */
    public void probe() throws IOException {
        Path via = helperMounted ? target : Path.of("/proc/self/fd/" + mountFdOrFail());
        long seen;
        try {
            seen = MountStat.size(via, PROBE_SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new MountException("probe of " + target + ": no answer through the mount within " + PROBE_SECONDS + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MountException("probe of " + target + " interrupted");
        } catch (IOException e) {
            throw new MountException("probe of " + target + " failed: " + e, e);
        }
        if (seen != backend.backend().size()) {
            throw new MountException("probe of " + target + " saw " + seen + " bytes, expected " + backend.backend().size());
        }
    }

    /** Places the mount on the pinned mountpoint file. */
    public void placeOnto(MountPoint mountPoint) throws IOException {
        if (helperMounted) {
            LOG.info("{}: mounted on {} by fusermount3 (connection {})", name, target, connectionId);
            return;
        }
        try {
            MountApi.attach(mountFdOrFail(), mountPoint.pinnedFd());
        } catch (NativeException e) {
            throw new MountException("cannot mount " + target + ": " + e.getMessage(), e);
        }
        dropMountFd();
        LOG.info("{}: mounted on {} (connection {})", name, target, connectionId);
    }

    /**
     * Places the mount beneath {@code top}, which must be the topmost mount at the path, then
     * detaches {@code top}: new opens land on this connection at once, files already open stay on
     * {@code top} until they are closed. There is no moment with nothing mounted.
     */
    public void placeBeneath(FuseConnection top) throws IOException {
        if (helperMounted || top.helperMounted) {
            throw new MountException("a new connection beneath " + target + " needs CAP_SYS_ADMIN (move_mount beneath); "
                    + "running as uid " + Libc.geteuid() + ", restart the export instead");
        }
        int topFd;
        try {
            topFd = Libc.open(target.toString(), Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
        } catch (NativeException e) {
            throw new MountException("cannot open " + target + " to mount beneath it: " + e.getMessage(), e);
        }
        try {
            int[] dev = MountApi.device(topFd);
            if (dev[0] != 0 || dev[1] != top.connectionId) {
                throw new MountException("the mount at " + target + " is " + dev[0] + ":" + dev[1]
                        + ", not our connection " + top.connectionId + "; not switching under someone else's mount");
            }
            MountApi.attachBeneath(mountFdOrFail(), topFd);
            dropMountFd();
            top.detachAt(topFd);
        } catch (NativeException e) {
            throw new MountException("cannot mount beneath " + target + ": " + e.getMessage(), e);
        } finally {
            Libc.close(topFd);
        }
        LOG.info("{}: mounted on {} beneath connection {}, which now serves only the files already open (connection {})",
                name, target, top.connectionId, connectionId);
    }

    /** Lazily unmounts this connection through a descriptor of its root: clients with open files keep it alive. */
    private void detachAt(int rootFd) {
        ending = true;
        unmounted.set(true);
        int r = Libc.umount2("/proc/self/fd/" + rootFd, Libc.MNT_DETACH);
        if (r < 0) {
            LOG.warn("{}: detaching connection {} failed: {}; aborting it", name, connectionId, Libc.strerror(-r));
            abort();
        }
    }

    private synchronized int mountFdOrFail() throws MountException {
        if (mountFd < 0) {
            throw new MountException(name + ": connection " + connectionId + " was already placed");
        }
        return mountFd;
    }

    private synchronized void dropMountFd() {
        if (mountFd >= 0) {
            Libc.close(mountFd);
            mountFd = -1;
        }
    }

    public void onHalt(Consumer<String> listener) {
        this.haltListener = listener;
    }

    public Path target() {
        return target;
    }

    public InitNegotiation.Result init() {
        return init;
    }

    public int connectionId() {
        return connectionId;
    }

    public long generation() {
        return generation;
    }

    public int mountId() {
        return mountId;
    }

    public ExportHandler exportHandler() {
        return handler;
    }

    @Override
    public void serveDevice(int deviceFd) {
        new DeviceLoop(this, deviceFd).run();
    }

    @Override
    public void ended(String how) {
        if (!ending) {
            halt("the kernel ended the connection (" + how + "): aborted through fusectl or unmounted by someone else");
        }
    }

    /**
     * Checks the mount is still in the mount table; a lazy unmount by someone else (or by a
     * crashed tool) leaves clients on a detached mount that no new open can reach, so the export
     * halts, which aborts the connection: those clients get errors at once, not a ghost file.
     * @param mountedMinors {@link MountTable#anonymousMinors()}, read once for every export checked
     */
    public void checkMounted(Set<Integer> mountedMinors) {
        // ending is checked again last: the export may have started its own unmount meanwhile
        if (!mountedMinors.contains(connectionId) && !halted.get() && !ending) {
            halt("FUSE connection " + connectionId + " is no longer mounted at " + target + " (unmounted by someone else)");
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int deviceFd() {
        return fd;
    }

    @Override
    public int maxWrite() {
        return init.maxWrite();
    }

    @Override
    public int maxPages() {
        return init.maxPages();
    }

    @Override
    public int requestBufferSize() {
        // the kernel refuses reads smaller than max(8192, header + write_in + max_write)
        return Math.max(8192, init.maxWrite() + InitNegotiation.PAGE);
    }

    @Override
    public RequestHandler handler() {
        return handler;
    }

    @Override
    public Map<String, String> options() {
        return options;
    }

    @Override
    public void halt(String reason) {
        if (halted.compareAndSet(false, true)) {
            LOG.error("{}: halting FUSE connection {} on {}: {}", name, connectionId, target, reason);
            abort();
            haltListener.accept(reason);
        }
    }

    @Override
    public boolean halted() {
        return halted.get();
    }

    /**
     * Unmounts. A busy file (clients still hold it open) is detached instead: the connection
     * then lives until the last client closes, and the transports keep serving until then.
     * @return true if the mount went away at once
     */
    public boolean unmount() {
        ending = true;
        if (!unmounted.compareAndSet(false, true)) {
            return true;
        }
        synchronized (this) {
            if (mountFd >= 0) { // never placed: nothing at the path is ours
                dropMountFd();
                abort();
                return true;
            }
        }
        if (!topmostIsOurs()) {
            LOG.warn("{}: {} is no longer our mount (unmounted by someone else); nothing to unmount", name, target);
            return true;
        }
        if (helperMounted) {
            String failed = Fusermount.unmount(target, false);
            if (failed == null) {
                return true;
            }
            LOG.info("{}: fusermount3 -u {}: {}; detaching and letting clients finish", name, target, failed);
            failed = Fusermount.unmount(target, true);
            if (failed != null) {
                LOG.warn("{}: fusermount3 -u -z {} failed: {}", name, target, failed);
            }
            return false;
        }
        int r = Libc.umount2(target.toString(), 0);
        if (r == 0) {
            return true;
        }
        if (r != -Errno.EBUSY) {
            LOG.warn("{}: umount {} failed ({}); detaching", name, target, Libc.strerror(-r));
        } else {
            LOG.info("{}: {} is still open by clients; detaching and letting them finish", name, target);
        }
        r = Libc.umount2(target.toString(), Libc.MNT_DETACH);
        if (r < 0 && r != -Errno.EINVAL) {
            LOG.warn("{}: lazy umount {} failed: {}", name, target, Libc.strerror(-r));
        }
        return false;
    }

    /** Whether the topmost mount at the target is this connection (never unmount someone else's). */
    private boolean topmostIsOurs() {
        try {
            return MountTable.find(target).map(e -> e.major() == 0 && e.minor() == connectionId).orElse(false);
        } catch (IOException e) {
            return true; // cannot tell: unmounting our own path is still the right default
        }
    }

    /** Ends the connection at once: pending and future requests fail with ENOTCONN/ECONNABORTED. */
    public void abort() {
        ending = true;
        abort(connectionId, name);
    }

    /** Aborts FUSE connection {@code id} through fusectl (mounted on demand). */
    public static void abort(int id, String who) {
        if (id < 0) {
            return;
        }
        try {
            if (MountTable.find(CONNECTIONS).isEmpty()) {
                Libc.mount("fusectl", CONNECTIONS.toString(), "fusectl", 0, "");
            }
            Path abort = CONNECTIONS.resolve(Integer.toString(id)).resolve("abort");
            if (Files.exists(abort)) {
                Files.write(abort, "1".getBytes(StandardCharsets.US_ASCII));
                LOG.warn("{}: aborted FUSE connection {}", who, id);
            }
        } catch (IOException e) {
            LOG.warn("{}: could not abort FUSE connection {}: {}", who, id, e.toString());
        }
    }

    @Override
    public long requestsServed() {
        return handler.requests();
    }

    /** Requests the kernel has sent and not yet had answered (fusectl's "waiting"); -1 if it cannot tell. */
    @Override
    public int waiting() {
        try {
            return Integer.parseInt(Files.readString(CONNECTIONS.resolve(Integer.toString(connectionId)).resolve("waiting")).trim());
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    /** Waits until the reader and every session's threads have ended (they end when the connection does). */
    public boolean awaitStopped(long millis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        for (TransportSession s : sessions) {
            if (!s.awaitStopped(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())))) {
                return false;
            }
        }
        reader.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        return !reader.isAlive();
    }

    /**
     * Unmounts (or detaches, letting clients with open files finish for up to {@code drainMillis}),
     * waits for every thread, aborts if they do not end, then releases: the sessions, the device
     * fd and the backend hold. Nothing is closed while a thread may still use it: if a thread is
     * still running after the grace periods (stuck in the kernel or the backend), the fd and the
     * backend hold are leaked with an error line, because a reused fd number would carry that
     * thread's late reply or pwrite into some other export's device or image.
     * @return true if everything was released
     */
    public boolean stop(long drainMillis) {
        boolean gone = unmount();
        return finish(gone ? ABORT_GRACE_MILLIS : drainMillis);
    }

    /**
     * Waits up to {@code millis} for the connection to end by itself (its last open file closed),
     * then aborts it and releases everything, as {@link #stop}.
     */
    public boolean finish(long millis) {
        boolean stopped;
        try {
            stopped = awaitStopped(millis);
            if (!stopped) {
                abort();
                stopped = awaitStopped(ABORT_GRACE_MILLIS);
                if (!stopped) {
                    LOG.error("{}: threads of connection {} did not stop within {} ms after abort", name, connectionId,
                            ABORT_GRACE_MILLIS);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            abort();
            stopped = false;
        }
        release(stopped);
        return stopped;
    }

    private synchronized void release(boolean stopped) {
        if (released) {
            return;
        }
        released = true;
        for (TransportSession s : sessions) {
            s.close(); // frees only what its stopped threads owned
        }
        dropMountFd();
        if (stopped) {
            Libc.close(fd);
            backend.release();
        } else {
            LOG.error("{}: a thread of connection {} is still running; leaking the /dev/fuse fd {} and the hold on "
                    + "the image rather than let their numbers be reused under it", name, connectionId, fd);
        }
    }

}
