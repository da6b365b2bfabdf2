package org.blockfuse.fuse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Optional;

import org.blockfuse.nativeio.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The regular file an export is mounted on: created when missing (and removed again at the end),
 * a directory refused, a stale FUSE mount left by a crashed run cleared first.
 */
public final class MountPoint {
    private static final Logger LOG = LoggerFactory.getLogger(MountPoint.class);

    private static final long PROBE_SECONDS = 3;

    private final Path path;
    private final boolean created;

    private MountPoint(Path path, boolean created) {
        this.path = path;
        this.created = created;
    }

    public Path path() {
        return path;
    }

    public boolean created() {
        return created;
    }

    /**
     * Makes {@code path} ready to be mounted on.
     * @throws MountException with a one-line reason
     */
    public static MountPoint prepare(Path path) throws IOException {
        Path p = path.toAbsolutePath().normalize();
        clearStaleMount(p);
        Optional<MountTable.Entry> mounted = MountTable.find(p);
        if (mounted.isPresent()) {
            throw new MountException("mountpoint " + p + " is already a mount point (" + mounted.get().fsType()
                    + " from " + mounted.get().source() + ")");
        }
        Path parent = p.getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new MountException("mountpoint folder " + parent + " does not exist");
        }
        if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
            throw new MountException("mountpoint " + p + " is a directory; blockfuse mounts on a regular file");
        }
        if (Files.exists(p)) {
            if (!Files.isRegularFile(p)) {
                throw new MountException("mountpoint " + p + " is not a regular file");
            }
            return new MountPoint(p, false);
        }
        try {
            Files.createFile(p);
        } catch (IOException e) {
            throw new MountException("cannot create mountpoint " + p + ": " + e.getMessage(), e);
        }
        return new MountPoint(p, true);
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
        java.util.concurrent.CompletableFuture<String> result = new java.util.concurrent.CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                Files.readAttributes(p, "size");
                result.complete("alive");
            } catch (IOException e) {
                boolean stale = e.getMessage() != null && e.getMessage().contains("not connected");
                result.complete(stale ? "stale" : "alive");
            }
        }, "blockfuse-mount-probe");
        t.setDaemon(true);
        t.start();
        try {
            return result.get(PROBE_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            return "hung";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "alive";
        } catch (java.util.concurrent.ExecutionException e) {
            return "alive";
        }
    }

    /** Removes the file if this export created it. */
    public void release() {
        if (created) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                LOG.warn("could not remove the mountpoint file {} we created: {}", path, e.toString());
            }
        }
    }
}
