package org.blockfuse.qcow2.internal;

import static org.blockfuse.qcow2.internal.Qcow2Format.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.StringJoiner;

import org.blockfuse.api.ImageException;

/**
 * The validated header of one qcow2 file plus the header extensions a reader needs. Every check that can
 * be made from cluster 0 and the file length happens here, before anything is allocated from header values.
 */
final class Qcow2Header {

    /** Longest stored name a message shows in full. */
    static final int MAX_SHOWN = 256;

    final int version;
    final int clusterBits;
    final long clusterSize;
    /** Header size rounded down to whole sectors, as QEMU exposes it. */
    final long virtualSize;
    final int l1Size;
    final long l1Offset;
    final int snapshotCount;
    final long snapshotsOffset;
    final long incompatibleFeatures;
    final long autoclearFeatures;
    final int compressionType;
    final String backingName;
    final String backingFormat;
    final String dataFileName;

    private Qcow2Header(Builder b) {
        version = b.version;
        clusterBits = b.clusterBits;
        clusterSize = 1L << b.clusterBits;
        virtualSize = b.size & ~SECTOR_MASK;
        l1Size = b.l1Size;
        l1Offset = b.l1Offset;
        snapshotCount = b.snapshotCount;
        snapshotsOffset = b.snapshotsOffset;
        incompatibleFeatures = b.incompatible;
        autoclearFeatures = b.autoclear;
        compressionType = b.compressionType;
        backingName = b.backingName;
        backingFormat = b.backingFormat;
        dataFileName = b.dataFileName;
    }

    boolean extendedL2() {
        return (incompatibleFeatures & INCOMPAT_EXTENDED_L2) != 0;
    }

    boolean hasDataFile() {
        return (incompatibleFeatures & INCOMPAT_DATA_FILE) != 0;
    }

    boolean dataFileRaw() {
        return (autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) != 0;
    }

    boolean corrupt() {
        return (incompatibleFeatures & INCOMPAT_CORRUPT) != 0;
    }

    /** True when the file starts with the qcow2 magic (used to probe backing files without a format). */
    static boolean hasMagic(ImageFile file) throws IOException {
        ByteBuffer magic = ByteBuffer.allocate(Integer.BYTES);
        return file.readUpTo(0, magic) == Integer.BYTES && magic.getInt(0) == MAGIC;
    }

    static Qcow2Header read(ImageFile file) throws IOException {
        String name = file.path().toString();
        long fileLength = file.length();
        if (fileLength < V2_HEADER_LENGTH) {
            throw refuse(name, "truncated header (file is " + fileLength + " bytes)");
        }
        ByteBuffer fixed = ByteBuffer.allocate(V2_HEADER_LENGTH);
        file.readFully(0, fixed);
        if (fixed.getInt(HDR_MAGIC) != MAGIC) {
            throw refuse(name, "bad magic, not a qcow2 image");
        }
        Builder b = new Builder();
        b.version = fixed.getInt(HDR_VERSION);
        if (b.version != 2 && b.version != 3) {
            throw refuse(name, "unsupported qcow2 version " + Integer.toUnsignedString(b.version));
        }
        b.clusterBits = fixed.getInt(HDR_CLUSTER_BITS);
        if (b.clusterBits < MIN_CLUSTER_BITS || b.clusterBits > MAX_CLUSTER_BITS) {
            throw refuse(name, "unsupported cluster size 2^" + Integer.toUnsignedString(b.clusterBits)
                    + " (cluster_bits must be " + MIN_CLUSTER_BITS + ".." + MAX_CLUSTER_BITS + ")");
        }
        long clusterSize = 1L << b.clusterBits;

        int headerLength = V2_HEADER_LENGTH;
        b.refcountOrder = DEFAULT_REFCOUNT_ORDER;
        if (b.version == 3) {
            if (fileLength < V3_MIN_HEADER_LENGTH) {
                throw refuse(name, "truncated header (file is " + fileLength + " bytes)");
            }
            ByteBuffer v3 = ByteBuffer.allocate(V3_MIN_HEADER_LENGTH);
            file.readFully(0, v3);
            headerLength = v3.getInt(HDR_HEADER_LENGTH);
            if (headerLength < V3_MIN_HEADER_LENGTH) {
                throw refuse(name, "header too short (header_length " + Integer.toUnsignedString(headerLength) + ")");
            }
            if (headerLength > clusterSize) {
                throw refuse(name, "header exceeds cluster size (header_length " + headerLength + ")");
            }
            if (headerLength % EXT_ALIGNMENT != 0) {
                throw refuse(name, "header_length " + headerLength + " is not a multiple of 8");
            }
            if (fileLength < headerLength) {
                throw refuse(name, "truncated header (file is " + fileLength + " bytes, header " + headerLength + ")");
            }
        }

        // Cluster 0 holds the header, the extensions and the backing name; bytes past EOF read as zero.
        ByteBuffer c0 = ByteBuffer.allocate((int) clusterSize);
        c0.limit((int) Math.min(clusterSize, fileLength));
        file.readFully(0, c0);
        c0.clear();

        b.size = c0.getLong(HDR_SIZE);
        int crypt = c0.getInt(HDR_CRYPT_METHOD);
        b.l1Size = c0.getInt(HDR_L1_SIZE);
        b.l1Offset = c0.getLong(HDR_L1_TABLE_OFFSET);
        long refcountTableOffset = c0.getLong(HDR_REFCOUNT_TABLE_OFFSET);
        int refcountTableClusters = c0.getInt(HDR_REFCOUNT_TABLE_CLUSTERS);
        b.snapshotCount = c0.getInt(HDR_NB_SNAPSHOTS);
        b.snapshotsOffset = c0.getLong(HDR_SNAPSHOTS_OFFSET);
        long backingOffset = c0.getLong(HDR_BACKING_FILE_OFFSET);
        int backingSize = c0.getInt(HDR_BACKING_FILE_SIZE);
        if (b.version == 3) {
            b.incompatible = c0.getLong(HDR_INCOMPATIBLE_FEATURES);
            b.autoclear = c0.getLong(HDR_AUTOCLEAR_FEATURES);
            b.refcountOrder = c0.getInt(HDR_REFCOUNT_ORDER);
            if (headerLength > HDR_COMPRESSION_TYPE) {
                b.compressionType = Byte.toUnsignedInt(c0.get(HDR_COMPRESSION_TYPE));
            }
        }

        switch (crypt) {
            case CRYPT_NONE -> { }
            case CRYPT_AES -> throw refuse(name, "image is encrypted (AES); encrypted images are not supported");
            case CRYPT_LUKS -> throw refuse(name, "image is encrypted (LUKS); encrypted images are not supported");
            default -> throw refuse(name, "unsupported encryption method " + Integer.toUnsignedString(crypt));
        }

        if (Long.compareUnsigned(backingOffset, clusterSize) > 0) {
            throw refuse(name, "invalid backing file offset " + Long.toUnsignedString(backingOffset));
        }
        if (backingOffset != 0) {
            if (Integer.compareUnsigned(backingSize, MAX_BACKING_NAME_LENGTH) > 0
                    || backingOffset + backingSize > clusterSize) {
                throw refuse(name, "backing file name too long (" + Integer.toUnsignedString(backingSize) + " bytes)");
            }
            b.backingName = string(c0, (int) backingOffset, backingSize);
        }

        long extensionEnd = backingOffset != 0 ? backingOffset : clusterSize;
        Map<Integer, String> featureNames = readExtensions(name, c0, headerLength, (int) extensionEnd, b);

        long unknown = b.incompatible & ~INCOMPAT_KNOWN;
        if (unknown != 0) {
            throw refuse(name, "unsupported incompatible feature(s): " + describeBits(unknown, featureNames));
        }
        if (b.compressionType != COMPRESSION_ZLIB && b.compressionType != COMPRESSION_ZSTD) {
            throw refuse(name, "unknown compression type " + b.compressionType);
        }
        if ((b.compressionType != COMPRESSION_ZLIB) != ((b.incompatible & INCOMPAT_COMPRESSION) != 0)) {
            throw refuse(name, "compression type " + b.compressionType
                    + " does not match the compression incompatible feature bit");
        }
        if ((b.incompatible & INCOMPAT_EXTENDED_L2) != 0 && b.clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS) {
            throw refuse(name, "unsupported subcluster size (extended L2 needs clusters of at least "
                    + (1 << MIN_EXTENDED_L2_CLUSTER_BITS) + " bytes)");
        }
        if (Integer.compareUnsigned(b.refcountOrder, MAX_REFCOUNT_ORDER) > 0) {
            throw refuse(name, "unsupported refcount order " + Integer.toUnsignedString(b.refcountOrder));
        }
        if ((b.autoclear & AUTOCLEAR_DATA_FILE_RAW) != 0 && (b.incompatible & INCOMPAT_DATA_FILE) == 0) {
            throw refuse(name, "data-file-raw is set but the image has no external data file");
        }
        if ((b.incompatible & INCOMPAT_DATA_FILE) != 0 && b.dataFileName == null) {
            throw refuse(name, "image uses an external data file but does not name it");
        }
        if (b.size < 0) {
            throw refuse(name, "virtual size " + Long.toUnsignedString(b.size) + " is too large");
        }
        if (refcountTableClusters == 0) {
            throw refuse(name, "image does not contain a reference count table");
        }
        if (Integer.toUnsignedLong(refcountTableClusters) * clusterSize > MAX_REFCOUNT_TABLE_BYTES
                || (refcountTableOffset & (clusterSize - 1)) != 0) {
            throw refuse(name, "invalid reference count table");
        }

        int wordsPerEntry = (b.incompatible & INCOMPAT_EXTENDED_L2) != 0 ? EXTENDED_L2_WORDS : STANDARD_L2_WORDS;
        validateL1(name, "active", b.l1Offset, b.l1Size, clusterSize, fileLength);
        long bytesPerL2 = clusterSize * (clusterSize / (ENTRY_BYTES * wordsPerEntry));
        // b.size is at most Long.MAX_VALUE here: round up without b.size + bytesPerL2 - 1, which overflows.
        long minL1 = b.size / bytesPerL2 + (b.size % bytesPerL2 == 0 ? 0 : 1);
        if (Integer.toUnsignedLong(b.l1Size) < minL1) {
            throw refuse(name, "L1 table is too small for the virtual size (" + b.l1Size + " < " + minL1 + " entries)");
        }
        return new Qcow2Header(b);
    }

    /** Shared by the active and the snapshot L1 tables: bounded, aligned and inside the file. */
    static void validateL1(String name, String which, long offset, int entries, long clusterSize, long fileLength)
            throws ImageException {
        long bytes = Integer.toUnsignedLong(entries) * ENTRY_BYTES;
        if (bytes > MAX_L1_BYTES) {
            throw refuse(name, which + " L1 table too large (" + Integer.toUnsignedString(entries) + " entries)");
        }
        if (bytes == 0) {
            return;
        }
        if ((offset & (clusterSize - 1)) != 0 || offset < 0 || offset > Long.MAX_VALUE - bytes) {
            throw refuse(name, which + " L1 table offset " + Long.toUnsignedString(offset) + " is invalid");
        }
        if (offset + bytes > fileLength) {
            throw refuse(name, which + " L1 table lies beyond the end of the file");
        }
    }

    private static Map<Integer, String> readExtensions(String name, ByteBuffer c0, int start, int end, Builder b)
            throws ImageException {
        Map<Integer, String> featureNames = new HashMap<>();
        int pos = start;
        // Every extension takes at least 8 bytes, so this loop ends after at most (end - start) / 8 rounds.
        while (pos < end) {
            if (end - pos < EXT_HEADER_LENGTH) {
                throw refuse(name, "header extension too large");
            }
            int type = c0.getInt(pos);
            long length = Integer.toUnsignedLong(c0.getInt(pos + Integer.BYTES));
            if (type == EXT_END) {
                break;
            }
            int data = pos + EXT_HEADER_LENGTH;
            if (length > end - data) {
                throw refuse(name, "header extension too large");
            }
            int len = (int) length;
            switch (type) {
                case EXT_BACKING_FORMAT -> {
                    if (len > MAX_BACKING_FORMAT_LENGTH) {
                        throw refuse(name, "backing format name too long (" + len + " bytes)");
                    }
                    b.backingFormat = string(c0, data, len);
                }
                case EXT_DATA_FILE -> b.dataFileName = string(c0, data, len);
                case EXT_FEATURE_NAMES -> {
                    for (int e = data; e + FEATURE_NAME_ENTRY <= data + len; e += FEATURE_NAME_ENTRY) {
                        if (c0.get(e) == FEATURE_TYPE_INCOMPATIBLE) {
                            featureNames.put(Byte.toUnsignedInt(c0.get(e + 1)), cString(c0, e + 2, FEATURE_NAME_LENGTH));
                        }
                    }
                }
                default -> { } // bitmaps, encryption header and unknown extensions do not matter for reading
            }
            pos = (int) Math.min(end, data + alignUp(len, EXT_ALIGNMENT));
        }
        return featureNames;
    }

    private static String describeBits(long bits, Map<Integer, String> names) {
        StringJoiner out = new StringJoiner(", ");
        for (int bit = 0; bit < Long.SIZE; bit++) {
            if ((bits & (1L << bit)) != 0) {
                String n = names.get(bit);
                out.add(n != null && !n.isEmpty() ? n + " (bit " + bit + ")" : "bit " + bit);
            }
        }
        return out.toString();
    }

    private static String string(ByteBuffer buf, int offset, int length) {
        byte[] bytes = new byte[length];
        buf.get(offset, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static String cString(ByteBuffer buf, int offset, int max) {
        int len = 0;
        while (len < max && buf.get(offset + len) != 0) {
            len++;
        }
        return string(buf, offset, len);
    }

    static ImageException refuse(String image, String reason) {
        return new ImageException(printable("qcow2 image " + image + ": " + reason));
    }

    /**
     * Text for a message or a log line, with control characters and Unicode line separators escaped (a
     * newline becomes the four characters backslash, x, 0, a). Names stored in an image (backing and data
     * file names, formats, feature names) reach messages verbatim otherwise, and a hostile image could break
     * the one-line message apart or write terminal escapes into the operator's log.
     */
    static String printable(Object text) {
        String s = String.valueOf(text);
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isISOControl(c) || c == '\u2028' || c == '\u2029') {
                out.append(c < 0x100 ? String.format("\\x%02x", (int) c) : String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    /**
     * A name stored in an image (or a path made from one) as a message shows it: escaped like
     * {@link #printable} and cut after {@value #MAX_SHOWN} characters, since a data file name extension has no
     * length limit and a garbled backing name may be a kilobyte of binary.
     */
    static String shown(Object name) {
        String s = String.valueOf(name);
        return s.length() <= MAX_SHOWN ? printable(s)
                : printable(s.substring(0, MAX_SHOWN)) + "...(" + s.length() + " characters)";
    }

    private static final class Builder {
        int version;
        int clusterBits;
        long size;
        int l1Size;
        long l1Offset;
        int snapshotCount;
        long snapshotsOffset;
        long incompatible;
        long autoclear;
        int refcountOrder;
        int compressionType;
        String backingName;
        String backingFormat;
        String dataFileName;
    }
}
