package org.blockfuse.raw;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.blockfuse.nativeio.Libc;

/**
 * A private ramfs mounted on a folder for one test: a real filesystem that has no fallocate at all
 * (every mode is EOPNOTSUPP), no O_DIRECT and no holes, so the backend's fallbacks run for real.
 * Needs root; {@link #close()} unmounts (lazily if something still holds it) and removes the folder.
 */
final class RamfsMount implements AutoCloseable {
    /** From linux/mount.h (uapi, stable since 2.4). */
    private static final long MS_RDONLY = 1;
    private static final long MS_REMOUNT = 32;

    private final Path dir;
    private boolean mounted;

    private RamfsMount(Path dir) {
        this.dir = dir;
    }

    static RamfsMount at(Path parent) throws IOException {
        Host.requireRoot("mounting a ramfs");
        RamfsMount m = new RamfsMount(Files.createTempDirectory(parent, "ramfs-"));
        try {
            Libc.mount("ramfs", m.dir.toString(), "ramfs", Libc.MS_NOSUID | Libc.MS_NODEV, "mode=0700");
            m.mounted = true;
        } catch (IOException e) {
            m.close();
            Host.require(false, "cannot mount a ramfs here: " + e.getMessage());
        }
        if (!Host.fsType(m.dir).equals("ramfs")) {
            m.close();
            throw new IOException(m.dir + " is " + Host.fsType(m.dir) + " after mounting a ramfs on it");
        }
        return m;
    }

    Path dir() {
        return dir;
    }

    void remountReadOnly() throws IOException {
        Libc.mount("ramfs", dir.toString(), "ramfs", MS_REMOUNT | MS_RDONLY | Libc.MS_NOSUID | Libc.MS_NODEV, null);
    }

    @Override
    public void close() throws IOException {
        if (mounted) {
            int r = Libc.umount2(dir.toString(), 0);
            if (r < 0) {
                r = Libc.umount2(dir.toString(), Libc.MNT_DETACH);
            }
            if (r < 0) {
                throw new IOException("cannot unmount the test ramfs at " + dir + ": " + Libc.strerror(-r));
            }
            mounted = false;
        }
        Files.deleteIfExists(dir);
    }
}
