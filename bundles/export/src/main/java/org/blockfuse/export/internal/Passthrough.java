package org.blockfuse.export.internal;

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
