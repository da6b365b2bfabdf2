package org.blockfuse.api;

import java.nio.file.Path;
import java.util.Map;

/**
 * What to open: the image, whether writes are wanted, and format-specific options
 * (for example {@code cache=none}, {@code snapshot=NAME}).
 */
public record BackendRequest(Path image, boolean writable, Map<String, String> options) {
    public BackendRequest {
        options = Map.copyOf(options);
    }

    public String option(String key, String fallback) {
        return options.getOrDefault(key, fallback);
    }
}
