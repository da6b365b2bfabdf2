package org.blockfuse.fuse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;

import org.blockfuse.fuse.internal.FuseConnection;
import org.blockfuse.fuse.internal.MountStat;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.NativeException;
import org.blockfuse.nativeio.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The regular file an export is mounted on: created when missing (and removed again at the end),
 * a directory or a symbolic link refused, a stale FUSE mount left by a crashed run cleared first.
 *
 * <p>The path cannot be redirected between the checks and the mount: the file is created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, then pinned by an O_PATH|O_NOFOLLOW descriptor whose own path (as
 * the kernel reports it in /proc/self/fd) must be the canonical path that was checked, and the
 * mount is made on that descriptor ({@code /proc/self/fd/N}), not on the name. A local user who
 * swaps a folder or the file for a link after the checks therefore gets a refusal, never a mount
 * over some other file.
 */
public final class MountPoint {
    private static final Logger LOG = LoggerFactory.getLogger(MountPoint.class);

    private static final long PROBE_SECONDS = 3;

    private final Path path;
    private final boolean created;
    /** O_PATH descriptor of exactly the file that was checked; -1 once released. */
    private int pinned;

    private MountPoint(Path path, boolean created, int pinned) {
        this.path = path;
        this.created = created;
        this.pinned = pinned;
    }

    /** The canonical path (folders resolved, the file itself never a link). */
    public Path path() {
        return path;
    }

    public boolean created() {
        return created;
    }

    /** The pinned O_PATH descriptor to mount on, so the mount lands on the file that was checked. */
    public synchronized int pinnedFd() {
        if (pinned < 0) {
            throw new IllegalStateException("mountpoint " + path + " was released");
        }
        return pinned;
    }

    /**
     * The canonical form of a mountpoint path: its folder with every link resolved, and its own
     * name, which must not be a link.
     * @throws MountException with a one-line reason
     */
    public static Path canonical(Path path) throws IOException {
        Path p = path.toAbsolutePath().normalize();
        Path parent = p.getParent();
        if (parent == null || p.getFileName() == null) {
            throw new MountException("mountpoint " + p + " is not a file path");
        }
        if (!Files.isDirectory(parent)) {
            throw new MountException("mountpoint folder " + parent + " does not exist");
        }
        Path real = parent.toRealPath().resolve(p.getFileName());
        if (Files.isSymbolicLink(real)) {
            throw new MountException("mountpoint " + p + " is a symbolic link; blockfuse does not follow links"
                    + " for mountpoints (give the real file)");
        }
        return real;
    }

    /**
     * Makes {@code path} ready to be mounted on.
     * @throws MountException with a one-line reason
     */
    public static MountPoint prepare(Path path) throws IOException {
        Path p = canonical(path);
        clearStaleMount(p);
        Optional<MountTable.Entry> mounted = MountTable.find(p);
        if (mounted.isPresent()) {
            throw new MountException("mountpoint " + p + " is already a mount point (" + mounted.get().fsType()
                    + " from " + mounted.get().source() + ")");
        }
        if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
            throw new MountException("mountpoint " + p + " is a directory; blockfuse mounts on a regular file");
        }
        boolean created = false;
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            // CREATE_NEW + NOFOLLOW_LINKS is O_CREAT|O_EXCL|O_NOFOLLOW: never through a planted link
            try (var ch = Files.newByteChannel(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                    LinkOption.NOFOLLOW_LINKS)) {
                created = true;
            } catch (IOException e) {
                throw new MountException("cannot create mountpoint " + p + ": " + e.getMessage(), e);
            }
        }
        try {
            return new MountPoint(p, created, pin(p));
        } catch (IOException e) {
            if (created) {
                Files.deleteIfExists(p);
            }
            throw e;
        }
    }

    /** Opens {@code p} as O_PATH without following a link and checks it is the regular file we checked. */
    private static int pin(Path p) throws IOException {
        int fd;
        try {
            fd = Libc.open(p.toString(), Libc.O_PATH | Libc.O_NOFOLLOW, 0);
        } catch (NativeException e) {
            throw new MountException("cannot open mountpoint " + p + ": " + Libc.strerror(e.errno()), e);
        }
        boolean ok = false;
        try {
            Stat st = Libc.fstat(fd);
            if (!st.isRegular()) {
                throw new MountException("mountpoint " + p + " is not a regular file"
                        + ((st.mode() & Stat.S_IFMT) == Stat.S_IFLNK ? " (a symbolic link)" : ""));
            }
            Path seen = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd));
            if (!seen.equals(p)) {
                throw new MountException("mountpoint " + p + " changed while it was checked (it now resolves to "
                        + seen + "); refusing to mount");
            }
            ok = true;
            return fd;
        } finally {
            if (!ok) {
                Libc.close(fd);
            }
        }
    }

    /**
     * A FUSE mount whose server died answers every access with ENOTCONN ("Transport endpoint is
     * not connected"); detach it so the path is usable again.
     */
    static void clearStaleMount(Path p) throws IOException {
        Optional<MountTable.Entry> entry = MountTable.find(p);
        if (entry.isEmpty() || !entry.get().isFuse()) {
            return;
        }
        String state = probe(p);
        if (state.equals("alive")) {
            return; // answers: a live mount, not ours to touch
        }
        if (state.equals("hung")) {
            // a server that holds the connection but never answers: end the connection first
            FuseConnection.abort(entry.get().minor(), p.toString());
        }
        int r = Libc.umount2(p.toString(), Libc.MNT_DETACH);
        if (r < 0) {
            throw new MountException("stale FUSE mount at " + p + " cannot be cleared: " + Libc.strerror(-r));
        }
        LOG.warn(state.equals("hung") ? "cleared a hung FUSE mount at {} (its server stopped answering; connection aborted)"
                : "cleared a stale FUSE mount at {} (Transport endpoint is not connected), left by a crashed server", p);
    }

    /**
     * Stats the mount from a helper thread: "alive", "stale" (ENOTCONN) or "hung" (no answer in
     * time — a stat on an unserved FUSE mount would block this thread for ever).
     */
    private static String probe(Path p) {
        try {
            MountStat.size(p, PROBE_SECONDS);
            return "alive";
        } catch (java.util.concurrent.TimeoutException e) {
            return "hung";
        } catch (IOException e) {
            boolean stale = e.getMessage() != null && e.getMessage().contains("not connected");
            return stale ? "stale" : "alive";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "alive";
        }
    }

    /** Drops the pin and removes the file if this export created it. */
    public void release() {
        synchronized (this) {
            Libc.close(pinned);
            pinned = -1;
        }
        if (created) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                LOG.warn("could not remove the mountpoint file {} we created: {}", path, e.toString());
            }
        }
    }
}
