package org.blockfuse.fuse;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.Function;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.RequestHandler;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One FUSE connection: the /dev/fuse fd, the mount on a regular file, and the negotiated INIT.
 * It belongs to the export, not to a transport: transports attach to it through {@link FuseChannel}.
 */
public final class FuseConnection implements FuseChannel {
    private static final Logger LOG = LoggerFactory.getLogger(FuseConnection.class);
    private static final Path CONNECTIONS = Path.of("/sys/fs/fuse/connections");
    public static final String FS_TYPE = "fuse.blockfuse";
    public static final int DEFAULT_MAX_WRITE = 1 << 20;

    private final String name;
    private final Path target;
    private final int fd;
    private final int connectionId;
    private final InitNegotiation.Result init;
    private final RequestHandler handler;
    private final Map<String, String> options;
    private final AtomicBoolean halted = new AtomicBoolean();
    private final AtomicBoolean mounted = new AtomicBoolean(true);
    /** Set once the export itself ends the connection: the ENODEV/ECONNABORTED that follow are expected. */
    private volatile boolean ending;
    /** Unique per connection in this JVM: events from an earlier connection can be told apart. */
    private final long generation = GENERATIONS.incrementAndGet();
    private static final java.util.concurrent.atomic.AtomicLong GENERATIONS = new java.util.concurrent.atomic.AtomicLong();
    private volatile Consumer<String> haltListener = reason -> { };

    private FuseConnection(String name, Path target, int fd, int connectionId, InitNegotiation.Result init,
            Function<ExportHandler.ProtocolGuard, RequestHandler> handlers, Map<String, String> options) {
        this.name = name;
        this.target = target;
        this.fd = fd;
        this.connectionId = connectionId;
        this.init = init;
        this.options = Map.copyOf(options);
        this.handler = handlers.apply(this::halt);
    }

    /**
     * Opens /dev/fuse, mounts it on the regular file {@code target} and answers INIT.
     * On failure nothing stays mounted or open.
     */
    public static FuseConnection mount(String name, MountPoint mountPoint, String source, boolean allowOther,
            Map<String, String> options, Function<ExportHandler.ProtocolGuard, RequestHandler> handlers)
            throws IOException {
        Path target = mountPoint.path();
        int wantWrite = DEFAULT_MAX_WRITE;
        int fd = Libc.open("/dev/fuse", Libc.O_RDWR, 0);
        boolean ok = false;
        try {
            String data = "fd=" + fd + ",rootmode=100000,user_id=" + Libc.getuid() + ",group_id=" + Libc.getgid()
                    + ",default_permissions,max_read=" + wantWrite + (allowOther ? ",allow_other" : "");
            try {
                Libc.mount(source, mountPoint.mountTarget(), FS_TYPE, Libc.MS_NOSUID | Libc.MS_NODEV, data);
            } catch (IOException e) {
                throw new MountException("cannot mount " + target + ": " + e.getMessage(), e);
            }
            try {
                int id = MountTable.find(target).map(MountTable.Entry::minor).orElse(-1);
                InitNegotiation.Result init = negotiate(fd, wantWrite);
                FuseConnection c = new FuseConnection(name, target, fd, id, init, handlers, options);
                ok = true;
                LOG.info("{}: mounted on {} (FUSE 7.{}, max_write {} KiB, connection {})", name, target, init.minor(),
                        init.maxWrite() >> 10, id);
                return c;
            } finally {
                if (!ok) {
                    Libc.umount2(target.toString(), Libc.MNT_DETACH);
                }
            }
        } finally {
            if (!ok) {
                Libc.close(fd);
            }
        }
    }

    private static InitNegotiation.Result negotiate(int fd, int wantWrite) throws IOException {
        ByteBuffer request = Libc.allocateAligned(wantWrite + InitNegotiation.PAGE, InitNegotiation.PAGE);
        ByteBuffer reply = Libc.allocateAligned(InitNegotiation.REPLY_LENGTH, 8);
        long n;
        do {
            n = Libc.read(fd, Libc.address(request), request.capacity());
        } while (n == -Errno.EINTR);
        if (n < 0) {
            throw new MountException("reading INIT from /dev/fuse failed: " + Libc.strerror((int) -n));
        }
        InitNegotiation.Result result = InitNegotiation.answer(request, (int) n, reply, wantWrite);
        long w = Libc.write(fd, Libc.address(reply), InitNegotiation.REPLY_LENGTH);
        if (w < 0) {
            throw new MountException("the kernel refused our INIT reply: " + Libc.strerror((int) -w));
        }
        return result;
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
        if (connectionId >= 0 && !mountedMinors.contains(connectionId) && !halted.get() && !ending) {
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
            LOG.error("{}: halting the export on {}: {}", name, target, reason);
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
     * then lives until the last client closes, and the transport keeps serving until then.
     * @return true if the mount went away at once
     */
    public boolean unmount() {
        ending = true;
        if (!mounted.compareAndSet(true, false)) {
            return true;
        }
        if (!topmostIsOurs()) {
            LOG.warn("{}: {} is no longer our mount (unmounted by someone else); nothing to unmount", name, target);
            return true;
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
            return MountTable.find(target).map(e -> e.major() == 0 && e.minor() == connectionId).orElse(false)
                    || connectionId < 0;
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
    static void abort(int id, String who) {
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

    /** Closes the device fd; call after the transport stopped. */
    public void closeDevice() {
        Libc.close(fd);
    }
}
