package org.blockfuse.api;

import java.nio.file.Path;
import java.util.Map;

/**
 * What the operator asked for: one image exported as one file.
 * @param allowOther "on", "off" or "auto" (on when the caller is root)
 * @param transport  "auto" or a transport name
 * @param options    backend and transport tuning (e.g. cache=none, workers=4, queue-depth=64)
 */
public record ExportSpec(String name, Path image, String format, Path mountpoint, boolean writable,
        boolean growable, String allowOther, String transport, Map<String, String> options) {
    public ExportSpec {
        options = Map.copyOf(options);
    }
}
