package org.blockfuse.qcow2.internal;

import java.util.Map;

import org.blockfuse.api.ImageException;
import org.blockfuse.api.OptionSpec;
import org.blockfuse.api.Sizes;

/** The qcow2-specific keys of {@code BackendRequest.options}, parsed and range-checked once. */
record OpenOptions(String snapshot, boolean allowCorrupt, long l2CacheBytes, int maxChainDepth,
        BackingPolicy backingPolicy) {

    static final String SNAPSHOT = "snapshot";
    static final String ALLOW_CORRUPT = "allow-corrupt";
    static final String L2_CACHE_SIZE = "l2-cache-size";
    static final String MAX_CHAIN_DEPTH = "max-chain-depth";
    static final String BACKING_POLICY = "backing-policy";

    static final long DEFAULT_L2_CACHE_BYTES = 4L << 20;
    static final int DEFAULT_MAX_CHAIN_DEPTH = 16;
    /** Caps user input so a typo cannot reserve unbounded memory. */
    private static final long MAX_L2_CACHE_BYTES = 1L << 30;
    private static final int MAX_CHAIN_DEPTH_LIMIT = 256;

    static final java.util.List<OptionSpec> SPECS = java.util.List.of(
            OptionSpec.string(SNAPSHOT, "", "qcow2: export this internal snapshot (id or name) read-only."),
            OptionSpec.bool(ALLOW_CORRUPT, false, "qcow2: open an image marked corrupt (read-only)."),
            OptionSpec.size(L2_CACHE_SIZE, "4M", "qcow2: bytes of L2 tables cached per image layer (at most 1G)."),
            OptionSpec.integer(MAX_CHAIN_DEPTH, DEFAULT_MAX_CHAIN_DEPTH, 0, MAX_CHAIN_DEPTH_LIMIT,
                    "qcow2: how many backing files deep a chain may go."),
            OptionSpec.choice(BACKING_POLICY, "follow", "qcow2: which backing and external data files an image may name: "
                    + "follow (any regular file or block device, as qemu-img), same-dir (only in the image's own folder) "
                    + "or none (refuse images that name one).", "follow", "same-dir", "none"));

    static OpenOptions parse(Map<String, String> options) throws ImageException {
        String snapshot = options.get(SNAPSHOT);
        boolean allowCorrupt = Boolean.parseBoolean(options.getOrDefault(ALLOW_CORRUPT, "false"));
        long l2 = bytes(L2_CACHE_SIZE, options.get(L2_CACHE_SIZE), DEFAULT_L2_CACHE_BYTES);
        if (l2 <= 0 || l2 > MAX_L2_CACHE_BYTES) {
            throw new ImageException("option " + L2_CACHE_SIZE + " must be between 1 and " + MAX_L2_CACHE_BYTES + " bytes");
        }
        long depth = whole(MAX_CHAIN_DEPTH, options.get(MAX_CHAIN_DEPTH), DEFAULT_MAX_CHAIN_DEPTH);
        if (depth < 0 || depth > MAX_CHAIN_DEPTH_LIMIT) {
            throw new ImageException("option " + MAX_CHAIN_DEPTH + " must be between 0 and " + MAX_CHAIN_DEPTH_LIMIT);
        }
        BackingPolicy policy = BackingPolicy.parse(BACKING_POLICY, options.get(BACKING_POLICY));
        return new OpenOptions(snapshot, allowCorrupt, l2, (int) depth, policy);
    }

    /** A byte count with an optional K, M or G suffix (powers of 1024). */
    /** A size option in the one syntax of every size option ({@link Sizes}). */
    private static long bytes(String key, String value, long fallback) throws ImageException {
        if (value == null || value.isBlank()) {
            return fallback;
        }
        try {
            return Sizes.parse(value);
        } catch (ImageException e) {
            throw new ImageException("option " + key + ": " + e.getMessage());
        }
    }

    private static long whole(String key, String value, long fallback) throws ImageException {
        if (value == null || value.isBlank()) {
            return fallback;
        }
        try {
            return Long.parseLong(value.trim());
        } catch (NumberFormatException e) {
            throw new ImageException("option " + key + " must be a whole number, not '" + value + "'");
        }
    }
}
