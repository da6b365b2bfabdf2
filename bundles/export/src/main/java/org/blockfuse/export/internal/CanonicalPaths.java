package org.blockfuse.export.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.blockfuse.api.ExportException;
import org.blockfuse.fuse.MountPoint;

/**
 * Paths in the one form comparisons may use: absolute, normalised, every symlinked folder resolved.
 * An image may itself be a link (it is resolved); a mountpoint may not (see {@link MountPoint}).
 */
final class CanonicalPaths {
    private CanonicalPaths() {
    }

    static Path mountpoint(Path p) throws ExportException {
        try {
            return MountPoint.canonical(p);
        } catch (IOException e) {
            throw new ExportException(e.getMessage());
        }
    }

    static Path image(Path p) throws ExportException {
        Path abs = p.toAbsolutePath().normalize();
        try {
            if (Files.exists(abs)) {
                return abs.toRealPath();
            }
            Path parent = abs.getParent();
            return parent != null && Files.isDirectory(parent) ? parent.toRealPath().resolve(abs.getFileName()) : abs;
        } catch (IOException e) {
            throw new ExportException("image " + p + " cannot be resolved: " + e.getMessage());
        }
    }

    /** For exports already configured: a path that no longer resolves is compared as written. */
    static Path mountpointOrAsGiven(Path p) {
        try {
            return mountpoint(p);
        } catch (ExportException e) {
            return p.toAbsolutePath().normalize();
        }
    }

    static Path imageOrAsGiven(Path p) {
        try {
            return image(p);
        } catch (ExportException e) {
            return p.toAbsolutePath().normalize();
        }
    }
}
