package org.blockfuse.export.internal;

import org.blockfuse.api.Availability;
import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.FuseExport;

import java.nio.file.Files;
import java.nio.file.Path;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ExportSpec;

/**
 * Whether an export may answer its opens with FUSE passthrough: the kernel then reads and writes
 * the image itself, so every semantic the server would enforce on READ and WRITE must hold without
 * it. The kernel cannot refuse a passthrough write past the end of a regular file, so a writable
 * fixed-size file is never passed through (it would grow).
 */
final class Passthrough {
    private static final Path PASSTHROUGH_PARAM = Path.of("/sys/module/fuse/parameters");

    private Passthrough() {
    }

    /**
     * Whether this process on this kernel can pass files through at all: root, Linux 6.9 or later,
     * and the kernel's offer at the latest INIT (known once an export has mounted).
     */
    static Availability support(boolean root) {
        if (!root) {
            return Availability.no("registering a backing file needs CAP_SYS_ADMIN (root)");
        }
        String release = System.getProperty("os.version", "");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("^(\\d+)\\.(\\d+)").matcher(release);
        if (m.find() && Integer.parseInt(m.group(1)) * 1000 + Integer.parseInt(m.group(2)) < 6009) {
            return Availability.no("Linux " + release + " has no FUSE passthrough (6.9 or later)");
        }
        long offered = FuseExport.kernelOfferedFlags();
        if (offered < 0) {
            return Availability.yes(); // Linux 6.9+ as root; the first INIT will tell for sure
        }
        return (offered & FuseAbi.InitFlags.PASSTHROUGH) != 0 ? Availability.yes()
                : Availability.no("the kernel did not offer FUSE_PASSTHROUGH at INIT (CONFIG_FUSE_PASSTHROUGH off?)");
    }

    /** Why not, in one phrase; null when every semantic holds and the kernel should allow it. */
    static String whyNot(ExportSpec spec, BlockBackend backend, boolean root) {
        if (!backend.supportsPassthrough()) {
            return spec.format() + " images are served by blockfuse (only raw images can be passed through)";
        }
        if (spec.options().getOrDefault("cache", "writeback").equals("none")) {
            return "cache=none: passthrough would let buffered clients use the host page cache";
        }
        if (spec.writable() && !spec.growable() && !backend.blockDevice()) {
            return "a writable fixed-size image file would grow under passthrough writes past its end "
                    + "(use --growable, a read-only export or a block device)";
        }
        if (!root) {
            return "registering a backing file needs CAP_SYS_ADMIN (root)";
        }
        if (!Files.isDirectory(PASSTHROUGH_PARAM)) {
            return "no fuse module parameters in /sys (kernel without FUSE?)";
        }
        return null;
    }
}
