package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashSet;
import java.util.Set;

import org.blockfuse.api.ImageException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opens a qcow2 image with its whole backing chain. Names are plain paths, relative ones resolved against
 * the folder of the image that names them; every file is identified by its file key (device and inode) so
 * that loops, including an image backing itself, are refused instead of recursing forever.
 */
final class ChainOpener {

    private static final Logger LOG = LoggerFactory.getLogger(ChainOpener.class);
    private static final String FORMAT_QCOW2 = "qcow2";
    private static final String FORMAT_RAW = "raw";

    private final OpenOptions options;
    private final Set<Object> seen = new HashSet<>();

    private ChainOpener(OpenOptions options) {
        this.options = options;
    }

    static Qcow2Layer openTop(Path image, OpenOptions options) throws IOException {
        return new ChainOpener(options).openQcow2(image, 0, options.snapshot());
    }

    private Qcow2Layer openQcow2(Path path, int depth, String snapshot) throws IOException {
        ImageFile file = openOnce(path);
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
                LOG.warn("qcow2 image {} is marked corrupt; opening it read-only because allow-corrupt=true", name);
            }
            long size = header.virtualSize;
            long l1Offset = header.l1Offset;
            int l1Size = header.l1Size;
            if (snapshot != null) {
                SnapshotTable.Entry entry = SnapshotTable.find(SnapshotTable.read(file, header), snapshot);
                if (entry == null) {
                    throw Qcow2Header.refuse(name, "no snapshot with id or name '" + snapshot + "'");
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
                Path dataPath = resolve(path, header.dataFileName, "data file");
                dataFile = openOnce(dataPath);
            }
            if (header.backingName != null) {
                backing = openBacking(path, header, depth + 1);
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

    private Layer openBacking(Path image, Qcow2Header header, int depth) throws IOException {
        String name = image.toString();
        if (depth > options.maxChainDepth()) {
            throw Qcow2Header.refuse(name, "backing chain is deeper than " + options.maxChainDepth()
                    + " layers (option max-chain-depth)");
        }
        Path path = resolve(image, header.backingName, "backing file");
        String format = header.backingFormat;
        if (format == null) {
            try (ImageFile probe = ImageFile.open(path)) {
                format = Qcow2Header.hasMagic(probe) ? FORMAT_QCOW2 : FORMAT_RAW;
            }
            LOG.warn("qcow2 image {} does not record the format of its backing file {}; probed it as {}",
                    name, path, format);
        }
        return switch (format) {
            case FORMAT_QCOW2 -> openQcow2(path, depth, null);
            case FORMAT_RAW -> new RawLayer(openOnce(path));
            default -> throw Qcow2Header.refuse(name, "backing file format '" + format + "' is not supported");
        };
    }

    /** Resolves a name stored in an image as a plain path, relative to the folder of that image. */
    private static Path resolve(Path image, String stored, String what) throws ImageException {
        Path target;
        try {
            Path p = Path.of(stored);
            Path folder = image.toAbsolutePath().getParent();
            target = p.isAbsolute() || folder == null ? p : folder.resolve(p);
        } catch (InvalidPathException e) {
            throw Qcow2Header.refuse(image.toString(), what + " name '" + stored + "' is not a valid path");
        }
        if (stored.isEmpty() || !Files.isRegularFile(target)) {
            throw Qcow2Header.refuse(image.toString(), what + " '" + stored + "' not found (looked for " + target + ")");
        }
        return target;
    }

    /** Opens a file of the chain, refusing one that is already part of it. */
    private ImageFile openOnce(Path path) throws IOException {
        Object key;
        try {
            BasicFileAttributes attrs = Files.readAttributes(path, BasicFileAttributes.class);
            key = attrs.fileKey() != null ? attrs.fileKey() : path.toRealPath();
        } catch (NoSuchFileException e) {
            throw new ImageException("qcow2 image " + path + " not found");
        }
        if (!seen.add(key)) {
            throw new ImageException("qcow2 image " + path + ": backing chain loop (file is already part of the chain)");
        }
        return ImageFile.open(path);
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
