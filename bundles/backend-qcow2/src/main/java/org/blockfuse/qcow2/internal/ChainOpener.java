package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

import org.blockfuse.api.ImageException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opens a qcow2 image with its whole backing chain. Names are plain paths, relative ones resolved against
 * the folder of the image that names them, and {@code backing-policy} decides which named files (backing
 * and external data files) are allowed at all. Every file is opened through {@link HostFileOpener} (regular
 * files and block devices only) and identified by device and inode, so that loops, including an image
 * backing itself, are refused instead of recursing forever.
 */
final class ChainOpener {

    private static final Logger LOG = LoggerFactory.getLogger(ChainOpener.class);
    private static final String FORMAT_QCOW2 = "qcow2";
    private static final String FORMAT_RAW = "raw";

    private final OpenOptions options;
    private final Set<HostFileOpener.FileId> seen = new HashSet<>();

    private ChainOpener(OpenOptions options) {
        this.options = options;
    }

    static Qcow2Layer openTop(Path image, OpenOptions options) throws IOException {
        ChainOpener opener = new ChainOpener(options);
        ImageFile top;
        try {
            top = opener.openOnce(image,
                    reason -> new ImageException(Qcow2Header.printable("qcow2 image " + image + " " + reason)));
        } catch (NoSuchFileException e) {
            throw new ImageException(Qcow2Header.printable("qcow2 image " + image + " not found"));
        }
        return opener.openQcow2(top, 0, options.snapshot());
    }

    /** Takes ownership of file: it is closed here if anything fails. */
    private Qcow2Layer openQcow2(ImageFile file, int depth, String snapshot) throws IOException {
        Path path = file.path();
        ImageFile dataFile = null;
        Layer backing = null;
        ClusterDecompressor decompressor = null;
        try {
            Qcow2Header header = Qcow2Header.read(file);
            String name = path.toString();
            if (header.corrupt()) {
                if (!options.allowCorrupt()) {
                    throw Qcow2Header.refuse(name, "image is marked corrupt; run 'qemu-img check -r all' "
                            + "or open it with allow-corrupt=true");
                }
                LOG.warn("qcow2 image {} is marked corrupt; opening it read-only because allow-corrupt=true",
                        Qcow2Header.printable(name));
            }
            long size = header.virtualSize;
            long l1Offset = header.l1Offset;
            int l1Size = header.l1Size;
            if (snapshot != null) {
                SnapshotTable.Entry entry = SnapshotTable.find(SnapshotTable.read(file, header), snapshot);
                if (entry == null) {
                    throw Qcow2Header.refuse(name, "no snapshot with id or name '" + snapshot + "'");
                }
                if (entry.diskSize() < 0) {
                    throw Qcow2Header.refuse(name, "snapshot '" + snapshot + "' has a disk size of "
                            + Long.toUnsignedString(entry.diskSize()) + " bytes, which is too large");
                }
                Qcow2Header.validateL1(name, "snapshot", entry.l1Offset(), entry.l1Size(), header.clusterSize,
                        file.length());
                l1Offset = entry.l1Offset();
                l1Size = entry.l1Size();
                size = entry.diskSize();
            }
            long[] l1 = Qcow2Layer.readL1(file, l1Offset, l1Size);

            if (header.hasDataFile()) {
                if (header.dataFileRaw() && header.backingName != null) {
                    throw Qcow2Header.refuse(name, "a raw external data file cannot be combined with a backing file");
                }
                dataFile = openNamed(file, header.dataFileName, "data file");
            }
            if (header.backingName != null) {
                backing = openBacking(file, header, depth + 1);
            }
            decompressor = header.compressionType == Qcow2Format.COMPRESSION_ZSTD
                    ? zstd(name) : new ZlibDecompressor();
            return new Qcow2Layer(file, header, size, l1, dataFile, backing, options.l2CacheBytes(), decompressor);
        } catch (IOException | RuntimeException e) {
            closeQuietly(file, e);
            closeQuietly(dataFile, e);
            closeQuietly(backing, e);
            if (decompressor != null) {
                decompressor.close();
            }
            throw e;
        }
    }

    private Layer openBacking(ImageFile image, Qcow2Header header, int depth) throws IOException {
        String name = image.path().toString();
        if (depth > options.maxChainDepth()) {
            throw Qcow2Header.refuse(name, "backing chain is deeper than " + options.maxChainDepth()
                    + " layers (option max-chain-depth)");
        }
        String format = header.backingFormat;
        if (format != null && !format.equals(FORMAT_QCOW2) && !format.equals(FORMAT_RAW)) {
            throw Qcow2Header.refuse(name, "backing file format '" + format + "' is not supported");
        }
        ImageFile file = openNamed(image, header.backingName, "backing file");
        try {
            if (format == null) {
                format = Qcow2Header.hasMagic(file) ? FORMAT_QCOW2 : FORMAT_RAW;
                LOG.warn("qcow2 image {} does not record the format of its backing file {}; probed it as {}",
                        Qcow2Header.printable(name), Qcow2Header.shown(file.path()), format);
            }
        } catch (IOException | RuntimeException e) {
            closeQuietly(file, e);
            throw e;
        }
        return format.equals(FORMAT_QCOW2) ? openQcow2(file, depth, null) : new RawLayer(file);
    }

    /**
     * Opens the backing or data file that image names, as the backing policy allows: the stored name is a
     * plain path, relative to the folder of the image; same-dir then checks where the opened file really is.
     */
    private ImageFile openNamed(ImageFile image, String stored, String what) throws IOException {
        String name = image.path().toString();
        BackingPolicy policy = options.backingPolicy();
        if (policy == BackingPolicy.NONE) {
            throw Qcow2Header.refuse(name, "names " + what + " '" + Qcow2Header.shown(stored) + "', which "
                    + OpenOptions.BACKING_POLICY + "=" + policy.value + " does not allow");
        }
        Path target = resolve(image.path(), stored, what);
        String described = what + " '" + Qcow2Header.shown(stored) + "' (" + Qcow2Header.shown(target) + ")";
        ImageFile file;
        try {
            file = openOnce(target, reason -> Qcow2Header.refuse(name, described + " " + reason));
        } catch (NoSuchFileException e) {
            throw Qcow2Header.refuse(name, what + " '" + Qcow2Header.shown(stored) + "' not found (looked for "
                    + Qcow2Header.shown(target) + ")");
        }
        Path folder = image.realPath().getParent();
        if (policy == BackingPolicy.SAME_DIR && !file.realPath().getParent().equals(folder)) {
            ImageException refusal = Qcow2Header.refuse(name, described + " resolves to " + file.realPath()
                    + ", outside the image's folder " + folder + " (" + OpenOptions.BACKING_POLICY + "="
                    + policy.value + ")");
            closeQuietly(file, refusal);
            throw refusal;
        }
        return file;
    }

    /** Resolves a name stored in an image as a plain path, relative to the folder of that image. */
    private static Path resolve(Path image, String stored, String what) throws ImageException {
        try {
            Path p = Path.of(stored);
            Path folder = image.toAbsolutePath().getParent();
            if (stored.isEmpty()) {
                throw new InvalidPathException(stored, "empty");
            }
            return p.isAbsolute() || folder == null ? p : folder.resolve(p);
        } catch (InvalidPathException e) {
            throw Qcow2Header.refuse(image.toString(), what + " name '" + Qcow2Header.shown(stored)
                    + "' is not a valid path");
        }
    }

    /** Opens a file of the chain, refusing a wrong kind of file and one that is already part of the chain. */
    private ImageFile openOnce(Path path, HostFileOpener.Refusal refusal) throws IOException {
        HostFileOpener.Opened opened = HostFileOpener.open(path, refusal);
        if (!seen.add(opened.id())) {
            ImageException loop = Qcow2Header.refuse(Qcow2Header.shown(path),
                    "backing chain loop (file is already part of the chain)");
            closeQuietly(opened.file(), loop);
            throw loop;
        }
        return opened.file();
    }

    private static ClusterDecompressor zstd(String name) throws ImageException {
        try {
            return new ZstdDecompressor();
        } catch (LinkageError | RuntimeException e) {
            throw Qcow2Header.refuse(name, "zstd compression is not available: " + e);
        }
    }

    private static void closeQuietly(AutoCloseable c, Throwable primary) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception e) {
            primary.addSuppressed(e);
        }
    }
}
