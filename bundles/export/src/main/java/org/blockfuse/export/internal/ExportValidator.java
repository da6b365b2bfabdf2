package org.blockfuse.export.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Collection;
import java.util.Set;
import java.util.regex.Pattern;

import org.blockfuse.api.BlockBackendFactory;
import org.blockfuse.api.ExportException;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.ImageException;

/**
 * Checks an export request before anything is written or mounted, so a bad request leaves
 * nothing behind. Every refusal is one line naming the value at fault.
 * Image permission bits are honoured even for root: an image nobody may write is not exported writable.
 */
final class ExportValidator {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
    private static final Set<PosixFilePermission> READ_BITS = Set.of(PosixFilePermission.OWNER_READ,
            PosixFilePermission.GROUP_READ, PosixFilePermission.OTHERS_READ);
    private static final Set<PosixFilePermission> WRITE_BITS = Set.of(PosixFilePermission.OWNER_WRITE,
            PosixFilePermission.GROUP_WRITE, PosixFilePermission.OTHERS_WRITE);

    private ExportValidator() {
    }

    static void validate(ExportSpec spec, BlockBackendFactory factory, Collection<String> formats,
            FuseTransport transport, Collection<String> transports, OptionCatalog options) throws ExportException {
        if (!NAME.matcher(spec.name()).matches()) {
            throw new ExportException("export name '" + spec.name()
                    + "' is invalid: use letters, digits, '.', '_' or '-' (at most 64, not starting with a symbol)");
        }
        if (factory == null) {
            throw new ExportException("unknown format '" + spec.format() + "' (installed: " + String.join(", ", formats) + ")");
        }
        if (spec.writable() && !factory.supportsWrite()) {
            throw new ExportException(spec.format() + " images are exported read-only; drop --writable");
        }
        if (spec.growable() && !spec.writable()) {
            throw new ExportException("--growable needs --writable");
        }
        if (!Set.of("on", "off", "auto").contains(spec.allowOther())) {
            throw new ExportException("allow-other must be on, off or auto, not '" + spec.allowOther() + "'");
        }
        if (!spec.transport().equals("auto")) {
            if (transport == null) {
                throw new ExportException("unknown transport '" + spec.transport() + "' (installed: "
                        + String.join(", ", transports) + ")");
            }
            if (!transport.availability().available()) {
                throw new ExportException("transport " + spec.transport() + " is not available here: "
                        + transport.availability().reason());
            }
        }
        options.check(spec, factory); // every key owned by someone, every value as its owner declares
        if (factory.imageIsPath()) {
            checkImage(spec);
        } else {
            if (spec.growable()) {
                throw new ExportException(spec.format() + " exports have the server's fixed size; drop --growable");
            }
            try {
                factory.checkLocation(spec.image());
            } catch (ImageException e) {
                throw new ExportException(e.getMessage());
            }
        }
        checkMountpoint(spec);
    }

    private static void checkImage(ExportSpec spec) throws ExportException {
        Path image = spec.imagePath();
        if (!image.isAbsolute()) {
            throw new ExportException("image path " + image + " must be absolute");
        }
        if (!Files.exists(image)) {
            if (spec.options().containsKey("create") && spec.format().equals("raw")) {
                return;
            }
            throw new ExportException("image " + image + " does not exist");
        }
        if (Files.isDirectory(image)) {
            throw new ExportException("image " + image + " is a directory");
        }
        try {
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(image);
            if (!Files.isReadable(image) || perms.stream().noneMatch(READ_BITS::contains)) {
                throw new ExportException("image " + image + " is not readable");
            }
            if (spec.writable() && (!Files.isWritable(image) || perms.stream().noneMatch(WRITE_BITS::contains))) {
                throw new ExportException("image " + image + " is read-only; export it without --writable");
            }
        } catch (IOException e) {
            throw new ExportException("image " + image + " cannot be inspected: " + e.getMessage());
        }
    }

    private static void checkMountpoint(ExportSpec spec) throws ExportException {
        Path mp = spec.mountpoint();
        if (!mp.isAbsolute()) {
            throw new ExportException("mountpoint " + mp + " must be absolute");
        }
        CanonicalPaths.mountpoint(mp); // refuses a missing folder or a mountpoint that is a link
        if (Files.isDirectory(mp, LinkOption.NOFOLLOW_LINKS)) {
            throw new ExportException("mountpoint " + mp + " is a directory; blockfuse mounts on a regular file");
        }
    }

    /**
     * Refuses a mountpoint another export uses, and an image that is another export's mountpoint
     * (serving an export through itself can deadlock its own threads). Paths are compared in
     * canonical form, so {@code ..}, {@code //} and symlinked folders do not hide a clash.
     */
    static void checkClashes(ExportSpec spec, Collection<ExportSpec> others) throws ExportException {
        Path mp = CanonicalPaths.mountpoint(spec.mountpoint());
        Path image = isPath(spec.image()) ? CanonicalPaths.image(spec.imagePath()) : null;
        for (ExportSpec other : others) {
            Path otherMp = CanonicalPaths.mountpointOrAsGiven(other.mountpoint());
            if (otherMp.equals(mp)) {
                throw new ExportException("mountpoint " + spec.mountpoint() + " is already used by export " + other.name()
                        + (spec.mountpoint().equals(other.mountpoint()) ? "" : " (as " + other.mountpoint() + ")"));
            }
            if (image == null) {
                continue; // a network image cannot be a mountpoint, nor a mountpoint an export's URI
            }
            if (otherMp.equals(image)) {
                throw new ExportException("image " + spec.image() + " is the mountpoint of export " + other.name()
                        + "; export its image " + other.image() + " instead");
            }
            if (isPath(other.image()) && CanonicalPaths.imageOrAsGiven(other.imagePath()).equals(mp)
                    && !image.equals(mp)) {
                throw new ExportException("mountpoint " + spec.mountpoint() + " is the image of export " + other.name());
            }
        }
    }

    private static final Pattern URI_SCHEME = Pattern.compile("[A-Za-z][A-Za-z0-9+.-]*://.*");

    /** Whether an image location is a path rather than a URI such as nbd://host/name. */
    private static boolean isPath(String image) {
        return !URI_SCHEME.matcher(image).matches();
    }
}
