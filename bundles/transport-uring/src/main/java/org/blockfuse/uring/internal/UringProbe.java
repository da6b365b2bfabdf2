package org.blockfuse.uring.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

import org.blockfuse.api.Availability;
import org.blockfuse.uring.internal.IoUringAbi.Sqe;

/** Decides once whether FUSE over io_uring can work here, and remembers why not. */
public final class UringProbe {
    static final int MIN_MAJOR = 6;
    static final int MIN_MINOR = 14;
    static final Path OSRELEASE = Path.of("/proc/sys/kernel/osrelease");
    static final Path ENABLE_URING = Path.of("/sys/module/fuse/parameters/enable_uring");
    static final Path IO_URING_DISABLED = Path.of("/proc/sys/kernel/io_uring_disabled");

    private UringProbe() {
    }

    public static Availability probe() {
        try {
            String release = Files.readString(OSRELEASE).trim();
            if (!kernelAtLeast(release, MIN_MAJOR, MIN_MINOR)) {
                return Availability.no("kernel " + release + " predates FUSE over io_uring (needs 6.14 or later)");
            }
            String enabled;
            try {
                enabled = Files.readString(ENABLE_URING).trim();
            } catch (NoSuchFileException e) {
                return Availability.no(ENABLE_URING + " is missing: fuse not loaded or built without CONFIG_FUSE_IO_URING");
            }
            if (!enabled.equals("Y")) {
                return Availability.no("FUSE over io_uring is switched off (" + ENABLE_URING + " = " + enabled
                        + "; echo Y > it to enable)");
            }
            try {
                String disabled = Files.readString(IO_URING_DISABLED).trim();
                if (!disabled.equals("0")) {
                    return Availability.no("io_uring is restricted (" + IO_URING_DISABLED + " = " + disabled + ")");
                }
            } catch (NoSuchFileException e) {
                // kernels before 6.6 have no such switch
            }
            nopRoundTrip();
            return Availability.yes();
        } catch (IOException | RuntimeException | LinkageError e) {
            return Availability.no("io_uring test ring failed: " + e.getMessage());
        }
    }

    static boolean kernelAtLeast(String release, int major, int minor) {
        String[] p = release.split("[.-]", 3);
        try {
            int ma = Integer.parseInt(p[0]);
            int mi = p.length > 1 ? Integer.parseInt(p[1].replaceAll("\\D.*", "")) : 0;
            return ma > major || (ma == major && mi >= minor);
        } catch (NumberFormatException e) {
            return false;
        }
    }

    /** Sets up a small SQE128 ring and passes one NOP through it. */
    static void nopRoundTrip() throws IOException {
        try (Ring ring = Ring.create(2)) {
            int at = ring.sq().claim();
            ring.sq().sqes().put(at + Sqe.OPCODE, (byte) IoUringAbi.OP_NOP);
            ring.sq().sqes().putLong(at + Sqe.USER_DATA, UserData.of(UserData.NOP, 7));
            int r = ring.submit(1);
            if (r < 0) {
                throw new IOException("io_uring_enter: errno " + -r);
            }
            long[] seen = new long[2];
            int n = ring.cq().reap((userData, res, flags) -> {
                seen[0] = userData;
                seen[1] = res;
            });
            if (n != 1 || seen[0] != UserData.of(UserData.NOP, 7) || seen[1] != 0) {
                throw new IOException("NOP came back as " + n + " completions, user_data " + seen[0] + ", res " + seen[1]);
            }
        }
    }
}
