package org.blockfuse.api;

import java.nio.file.Path;
import java.util.Map;

/**
 * What the operator asked for: one image exported as one file.
 * @param image      where the image is, as the operator wrote it: an absolute path for file formats
 *                   (raw, qcow2), a URI for network formats (nbd://host/name)
 * @param allowOther "on", "off" or "auto" (on when the caller is root)
 * @param transport  "auto" or a transport name
 * @param options    backend and transport tuning (e.g. cache=none, workers=4, queue-depth=64)
 */
public record ExportSpec(String name, String image, String format, Path mountpoint, boolean writable,
        boolean growable, String allowOther, String transport, Map<String, String> options) {
    public ExportSpec {
        options = Map.copyOf(options);
    }

    /** An export of an image file. */
    public ExportSpec(String name, Path image, String format, Path mountpoint, boolean writable,
            boolean growable, String allowOther, String transport, Map<String, String> options) {
        this(name, image.toString(), format, mountpoint, writable, growable, allowOther, transport, options);
    }

    /** The image as a host path (file formats only). */
    public Path imagePath() {
        return Path.of(image);
    }
}
