package org.blockfuse.api;

import java.nio.file.Path;
import java.util.Map;

/**
 * What to open: the image (a path for file formats, a URI for network ones), whether writes are
 * wanted, and format-specific options (for example {@code cache=none}, {@code snapshot=NAME}).
 */
public record BackendRequest(String image, boolean writable, Map<String, String> options) {
    public BackendRequest {
        options = Map.copyOf(options);
    }

    public BackendRequest(Path image, boolean writable, Map<String, String> options) {
        this(image.toString(), writable, options);
    }

    /** The image as a host path (file formats only). */
    public Path imagePath() {
        return Path.of(image);
    }

    public String option(String key, String fallback) {
        return options.getOrDefault(key, fallback);
    }
}
