package org.blockfuse.qcow2.internal;

import java.util.Arrays;
import java.util.stream.Collectors;

import org.blockfuse.api.ImageException;

/**
 * The {@code backing-policy} option: which files an image may name as its backing file or external data
 * file. Whatever the policy, a named file must be a regular file or a block device ({@link HostFileOpener}).
 */
enum BackingPolicy {

    /** Relative and absolute names, symlinks followed, as qemu-img does. The default. */
    FOLLOW("follow"),
    /** Only files whose real path lies in the real folder of the image that names them. */
    SAME_DIR("same-dir"),
    /** No named files at all: an image that names one is refused (for untrusted images). */
    NONE("none");

    final String value;

    BackingPolicy(String value) {
        this.value = value;
    }

    static BackingPolicy parse(String key, String value) throws ImageException {
        if (value == null || value.isBlank()) {
            return FOLLOW;
        }
        for (BackingPolicy p : values()) {
            if (p.value.equals(value.trim())) {
                return p;
            }
        }
        throw new ImageException("option " + key + " must be one of "
                + Arrays.stream(values()).map(p -> p.value).collect(Collectors.joining(", ")) + ": " + value);
    }
}
