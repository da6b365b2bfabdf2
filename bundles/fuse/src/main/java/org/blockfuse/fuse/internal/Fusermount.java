package org.blockfuse.fuse.internal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.blockfuse.fuse.MountException;
import org.blockfuse.nativeio.NativeException;
import org.blockfuse.nativeio.Spawn;

/**
 * Mounting without CAP_SYS_ADMIN, through libfuse's setuid helper, as every unprivileged FUSE
 * server does: fusermount3 opens /dev/fuse, checks that the caller may mount there (owns or may
 * write the mountpoint; allow_other only with user_allow_other in /etc/fuse.conf), mounts, and
 * sends the /dev/fuse descriptor back over the socket named by {@code _FUSE_COMMFD}. Unmounting
 * is {@code fusermount3 -u}. Only absolute, root-owned helper paths are used, with a fixed
 * environment, so no caller's PATH decides which program runs setuid.
 */
public final class Fusermount {
    private static final List<Path> CANDIDATES = List.of(Path.of("/usr/bin/fusermount3"), Path.of("/bin/fusermount3"));
    private static final long TIMEOUT_MILLIS = 10_000;
    private static final Path FUSE_CONF = Path.of("/etc/fuse.conf");

    private Fusermount() {
    }

    /** The helper, or null when fuse3 is not installed. */
    static Path helper() {
        for (Path p : CANDIDATES) {
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    /** Whether /etc/fuse.conf lets ordinary users ask for allow_other. */
    public static boolean userAllowOther() {
        try {
            return Files.readAllLines(FUSE_CONF).stream().map(String::trim).anyMatch(l -> l.equals("user_allow_other"));
        } catch (java.io.IOException e) {
            return false;
        }
    }

    /**
     * Mounts a FUSE file system at {@code target} with {@code options} (comma-separated, no fd=,
     * rootmode=, user_id= or group_id=: the helper adds those); returns the /dev/fuse descriptor.
     */
    static int mount(Path target, String options) throws MountException {
        Path helper = helper();
        if (helper == null) {
            throw new MountException("cannot mount " + target + " as an ordinary user: fusermount3 is not installed "
                    + "(Debian package fuse3)");
        }
        Spawn.Result r;
        try {
            r = Spawn.run(List.of(helper.toString(), "-o", options, "--", target.toString()), env(), TIMEOUT_MILLIS);
        } catch (NativeException e) {
            throw new MountException("cannot run " + helper + ": " + e.getMessage(), e);
        }
        if (r.receivedFd() < 0) {
            throw new MountException("cannot mount " + target + ": " + helper + " " + describe(r));
        }
        if (r.exit() != 0) {
            org.blockfuse.nativeio.Libc.close(r.receivedFd());
            throw new MountException("cannot mount " + target + ": " + helper + " sent a descriptor but " + describe(r));
        }
        return r.receivedFd();
    }

    /** {@code fusermount3 -u [-z]}: -z detaches a busy mount (clients keep their open files). */
    static String unmount(Path target, boolean lazy) {
        Path helper = helper();
        if (helper == null) {
            return "fusermount3 is not installed";
        }
        List<String> argv = new ArrayList<>(List.of(helper.toString(), "-u", "-q"));
        if (lazy) {
            argv.add("-z");
        }
        argv.add("--");
        argv.add(target.toString());
        try {
            Spawn.Result r = Spawn.run(argv, env(), TIMEOUT_MILLIS);
            return r.exit() == 0 ? null : describe(r);
        } catch (NativeException e) {
            return e.getMessage();
        }
    }

    private static List<String> env() {
        return List.of("_FUSE_COMMFD=" + Spawn.CHILD_FD, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C");
    }

    private static String describe(Spawn.Result r) {
        String how = r.exit() < 0 ? "was killed by signal " + -r.exit() + " (no answer within " + TIMEOUT_MILLIS / 1000
                + " s?)" : "exited with status " + r.exit();
        return how + (r.stderr().isEmpty() ? "" : ": " + r.stderr().replace('\n', ' '));
    }
}
