package org.blockfuse.qcow2.internal;

import static org.blockfuse.qcow2.internal.Qcow2Format.*;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The image fuzzer's map of one valid qcow2 file, parsed here independently of the reader: where each
 * structure lies (the places worth mutating, {@link #targets}) and, for one exported view (the active disk
 * or an internal snapshot), which guest bytes can depend on which file bytes ({@link #effect}). That second
 * part is the fuzzer's oracle: a change to bytes that nothing of the view reads must leave the served disk
 * identical, a change to an L2 entry may only alter the guest cluster it maps, and so on.
 */
final class ImageLayout {

    /** How a change to some bytes of the file may show in the exported view. */
    enum Role {
        /** Nothing of the view reads these bytes: the image must still open and read identically. */
        INERT,
        /** Checked at open but not used for data (refcount table, snapshot table): refusal, or identical. */
        VALIDATED,
        /** Only the guest range of the region may change (or fail with EIO). */
        GUEST,
        /** Anything may change (geometry, features, names): only the generic invariants hold. */
        ANY
    }

    /** What kind of value a mutation target holds; picks the interesting values to try. */
    enum Kind { MAGIC, VERSION, OFFSET, COUNT, FEATURES, SMALL_INT, EXT_TYPE, L1_ENTRY, L2_ENTRY, BITMAP,
        DESCRIPTOR, BYTES, BACKING_NAME, EXT_STRING }

    /** Which part of the format a target belongs to; the mutator spreads its picks over them. */
    enum Area { HEADER, EXTENSIONS, BACKING_NAME, L1, L2, COMPRESSED, REFCOUNT, SNAPSHOTS, SLACK }

    /** A place to mutate: width is 1, 2, 4 or 8 for numbers, any length for BYTES and names. */
    record Target(Area area, Kind kind, String what, long offset, int width) {
    }

    /**
     * Bytes of the file and what a change to them may do. A whole-table region counts only when the file is
     * cut inside it: the reader reads an L1 or L2 table whole, so a table the file no longer holds fails as a
     * unit, while a change to one entry only concerns that entry.
     */
    record Region(long start, long end, Role role, long guestStart, long guestEnd, String what, boolean whole) {
        Region(long start, long end, Role role, long guestStart, long guestEnd, String what) {
            this(start, end, role, guestStart, guestEnd, what, false);
        }
    }

    /** What a set of changed file ranges may do to a view. */
    record Effect(boolean any, boolean validated, List<long[]> guest, List<String> touched) {
        /** Nothing the view reads changed: the image must be served exactly as before. */
        boolean strictlyInert() {
            return !any && !validated && guest.isEmpty();
        }

        /** True when guest range [start, end) may differ from the reference. */
        boolean mayAffect(long start, long end) {
            if (any) {
                return true;
            }
            for (long[] g : guest) {
                if (g[0] < end && start < g[1]) {
                    return true;
                }
            }
            return false;
        }
    }

    /** One exported view: the active disk (snapshot null) or an internal snapshot, by name. */
    record View(String snapshot, long size, List<Region> regions) {
    }

    private record Extension(int offset, int type, int length) {
    }

    private record Snapshot(long offset, long length, String name, long l1Offset, int l1Size, long diskSize) {
    }

    final long fileLength;
    final int version;
    final int clusterBits;
    final long clusterSize;
    final int headerLength;
    final long size;
    final boolean extendedL2;
    final boolean externalData;
    final long backingOffset;
    final int backingSize;
    final long l1Offset;
    final int l1Size;
    final long refcountTableOffset;
    final long refcountTableBytes;
    final long snapshotsOffset;
    private long snapshotTableEnd;
    private final ByteBuffer b;
    private final List<Extension> extensions = new ArrayList<>();
    private final List<Snapshot> snapshots = new ArrayList<>();
    private final List<Long> refcountBlocks = new ArrayList<>();
    private final List<Target> targets = new ArrayList<>();
    /** Offsets of the image's structures, for mutations that point one structure at another. */
    final List<Long> landmarks = new ArrayList<>();
    private final int entryBytes;
    private final long l2Entries;
    private final long bytesPerL2;
    private final int compressedOffsetBits;

    ImageLayout(byte[] image) {
        fileLength = image.length;
        b = ByteBuffer.wrap(image);
        version = b.getInt(HDR_VERSION);
        clusterBits = b.getInt(HDR_CLUSTER_BITS);
        clusterSize = 1L << clusterBits;
        headerLength = version == 3 ? b.getInt(HDR_HEADER_LENGTH) : V2_HEADER_LENGTH;
        size = b.getLong(HDR_SIZE) & ~SECTOR_MASK;
        long incompatible = version == 3 ? b.getLong(HDR_INCOMPATIBLE_FEATURES) : 0;
        extendedL2 = (incompatible & INCOMPAT_EXTENDED_L2) != 0;
        externalData = (incompatible & INCOMPAT_DATA_FILE) != 0;
        backingOffset = b.getLong(HDR_BACKING_FILE_OFFSET);
        backingSize = b.getInt(HDR_BACKING_FILE_SIZE);
        l1Offset = b.getLong(HDR_L1_TABLE_OFFSET);
        l1Size = b.getInt(HDR_L1_SIZE);
        refcountTableOffset = b.getLong(HDR_REFCOUNT_TABLE_OFFSET);
        refcountTableBytes = b.getInt(HDR_REFCOUNT_TABLE_CLUSTERS) * clusterSize;
        snapshotsOffset = b.getLong(HDR_SNAPSHOTS_OFFSET);
        entryBytes = ENTRY_BYTES * (extendedL2 ? EXTENDED_L2_WORDS : STANDARD_L2_WORDS);
        l2Entries = clusterSize / entryBytes;
        bytesPerL2 = clusterSize * l2Entries;
        compressedOffsetBits = COMPRESSED_FIELD_TOP - (clusterBits - COMPRESSED_FIELD_BIAS);
        parseExtensions();
        parseSnapshots(b.getInt(HDR_NB_SNAPSHOTS));
        for (long i = 0; i < refcountTableBytes / ENTRY_BYTES; i++) {
            long block = b.getLong((int) (refcountTableOffset + i * ENTRY_BYTES));
            if (block != 0) {
                refcountBlocks.add(block);
            }
        }
        collectTargets();
        landmarks.addAll(List.of(0L, clusterSize, l1Offset, refcountTableOffset, fileLength));
        refcountBlocks.forEach(landmarks::add);
        if (snapshotsOffset != 0) {
            landmarks.add(snapshotsOffset);
        }
    }

    private void parseExtensions() {
        int end = (int) (backingOffset != 0 ? backingOffset : Math.min(clusterSize, fileLength));
        for (int pos = headerLength; pos + EXT_HEADER_LENGTH <= end; ) {
            int type = b.getInt(pos);
            int length = b.getInt(pos + 4);
            extensions.add(new Extension(pos, type, length));
            if (type == EXT_END) {
                break;
            }
            pos += EXT_HEADER_LENGTH + (int) alignUp(length, EXT_ALIGNMENT);
        }
    }

    private void parseSnapshots(int count) {
        long pos = snapshotsOffset;
        for (int i = 0; i < count; i++) {
            int idSize = Short.toUnsignedInt(b.getShort((int) pos + SN_ID_SIZE));
            int nameSize = Short.toUnsignedInt(b.getShort((int) pos + SN_NAME_SIZE));
            int extra = b.getInt((int) pos + SN_EXTRA_DATA_SIZE);
            long length = alignUp(SN_FIXED_LENGTH + extra + idSize + nameSize, SN_ENTRY_ALIGNMENT);
            byte[] name = new byte[nameSize];
            b.get((int) pos + SN_FIXED_LENGTH + extra + idSize, name);
            long diskSize = extra >= SN_EXTRA_DISK_SIZE + 8
                    ? b.getLong((int) pos + SN_FIXED_LENGTH + SN_EXTRA_DISK_SIZE) & ~SECTOR_MASK : size;
            snapshots.add(new Snapshot(pos, length, new String(name, java.nio.charset.StandardCharsets.UTF_8),
                    b.getLong((int) pos + SN_L1_TABLE_OFFSET), b.getInt((int) pos + SN_L1_SIZE), diskSize));
            pos += length;
        }
        snapshotTableEnd = pos;
    }

    List<String> snapshotNames() {
        return snapshots.stream().map(Snapshot::name).toList();
    }

    List<Target> targets() {
        return targets;
    }

    // ---- where to mutate

    private void target(Area area, Kind kind, String what, long offset, int width) {
        if (offset >= 0 && offset + width <= fileLength && width > 0) {
            targets.add(new Target(area, kind, what, offset, width));
        }
    }

    private void collectTargets() {
        target(Area.HEADER, Kind.MAGIC, "magic", HDR_MAGIC, 4);
        target(Area.HEADER, Kind.VERSION, "version", HDR_VERSION, 4);
        target(Area.HEADER, Kind.OFFSET, "backing_file_offset", HDR_BACKING_FILE_OFFSET, 8);
        target(Area.HEADER, Kind.COUNT, "backing_file_size", HDR_BACKING_FILE_SIZE, 4);
        target(Area.HEADER, Kind.SMALL_INT, "cluster_bits", HDR_CLUSTER_BITS, 4);
        target(Area.HEADER, Kind.COUNT, "size", HDR_SIZE, 8);
        target(Area.HEADER, Kind.SMALL_INT, "crypt_method", HDR_CRYPT_METHOD, 4);
        target(Area.HEADER, Kind.COUNT, "l1_size", HDR_L1_SIZE, 4);
        target(Area.HEADER, Kind.OFFSET, "l1_table_offset", HDR_L1_TABLE_OFFSET, 8);
        target(Area.HEADER, Kind.OFFSET, "refcount_table_offset", HDR_REFCOUNT_TABLE_OFFSET, 8);
        target(Area.HEADER, Kind.COUNT, "refcount_table_clusters", HDR_REFCOUNT_TABLE_CLUSTERS, 4);
        target(Area.HEADER, Kind.COUNT, "nb_snapshots", HDR_NB_SNAPSHOTS, 4);
        target(Area.HEADER, Kind.OFFSET, "snapshots_offset", HDR_SNAPSHOTS_OFFSET, 8);
        if (version == 3) {
            target(Area.HEADER, Kind.FEATURES, "incompatible_features", HDR_INCOMPATIBLE_FEATURES, 8);
            target(Area.HEADER, Kind.FEATURES, "compatible_features", HDR_COMPATIBLE_FEATURES, 8);
            target(Area.HEADER, Kind.FEATURES, "autoclear_features", HDR_AUTOCLEAR_FEATURES, 8);
            target(Area.HEADER, Kind.SMALL_INT, "refcount_order", HDR_REFCOUNT_ORDER, 4);
            target(Area.HEADER, Kind.COUNT, "header_length", HDR_HEADER_LENGTH, 4);
            if (headerLength > HDR_COMPRESSION_TYPE) {
                target(Area.HEADER, Kind.SMALL_INT, "compression_type", HDR_COMPRESSION_TYPE, 1);
                target(Area.HEADER, Kind.BYTES, "header padding", HDR_COMPRESSION_TYPE + 1,
                        headerLength - HDR_COMPRESSION_TYPE - 1);
            }
        }
        int slack = headerLength;
        for (Extension e : extensions) {
            String name = extensionName(e.type);
            target(Area.EXTENSIONS, Kind.EXT_TYPE, name + " extension type", e.offset, 4);
            target(Area.EXTENSIONS, Kind.COUNT, name + " extension length", e.offset + 4, 4);
            if (e.type == EXT_BACKING_FORMAT || e.type == EXT_DATA_FILE) {
                target(Area.EXTENSIONS, Kind.EXT_STRING, name, e.offset, e.length);
            } else if (e.length > 0) {
                target(Area.EXTENSIONS, Kind.BYTES, name + " data", e.offset + EXT_HEADER_LENGTH, e.length);
            }
            slack = e.offset + EXT_HEADER_LENGTH + (int) alignUp(e.length, EXT_ALIGNMENT);
        }
        long slackEnd = backingOffset != 0 ? backingOffset : clusterSize;
        target(Area.SLACK, Kind.BYTES, "cluster 0 after the extensions", slack, (int) Math.min(4096, slackEnd - slack));
        if (backingOffset != 0) {
            target(Area.BACKING_NAME, Kind.BACKING_NAME, "backing file name", backingOffset, backingSize);
            long after = backingOffset + backingSize;
            target(Area.SLACK, Kind.BYTES, "cluster 0 after the backing name", after,
                    (int) Math.min(4096, clusterSize - after));
        }
        l1Targets("active L1", l1Offset, l1Size, size);
        for (Snapshot s : snapshots) {
            String sn = "snapshot '" + s.name + "'";
            target(Area.SNAPSHOTS, Kind.OFFSET, sn + " l1_table_offset", s.offset + SN_L1_TABLE_OFFSET, 8);
            target(Area.SNAPSHOTS, Kind.COUNT, sn + " l1_size", s.offset + SN_L1_SIZE, 4);
            target(Area.SNAPSHOTS, Kind.COUNT, sn + " id_str_size", s.offset + SN_ID_SIZE, 2);
            target(Area.SNAPSHOTS, Kind.COUNT, sn + " name_size", s.offset + SN_NAME_SIZE, 2);
            target(Area.SNAPSHOTS, Kind.COUNT, sn + " vm_state_size", s.offset + SN_VM_STATE_SIZE, 4);
            target(Area.SNAPSHOTS, Kind.COUNT, sn + " extra_data_size", s.offset + SN_EXTRA_DATA_SIZE, 4);
            target(Area.SNAPSHOTS, Kind.COUNT, sn + " disk size", s.offset + SN_FIXED_LENGTH + SN_EXTRA_DISK_SIZE, 8);
            target(Area.SNAPSHOTS, Kind.BYTES, sn + " entry", s.offset, (int) s.length);
            l1Targets(sn + " L1", s.l1Offset, s.l1Size, s.diskSize);
        }
        for (long i = 0; i < Math.min(64, refcountTableBytes / ENTRY_BYTES); i++) {
            target(Area.REFCOUNT, Kind.OFFSET, "refcount table entry " + i, refcountTableOffset + i * ENTRY_BYTES, 8);
        }
        for (long block : refcountBlocks) {
            target(Area.REFCOUNT, Kind.BYTES, "refcount block at " + block, block, (int) clusterSize);
        }
        targets.sort(Comparator.comparingLong(Target::offset));
    }

    private void l1Targets(String which, long table, int entries, long diskSize) {
        for (int i = 0; i < entries; i++) {
            long at = table + (long) i * ENTRY_BYTES;
            if (at + ENTRY_BYTES > fileLength) {
                return;
            }
            target(Area.L1, Kind.L1_ENTRY, which + " entry " + i, at, 8);
            long l2 = b.getLong((int) at) & OFFSET_MASK;
            if (l2 == 0 || l2 + clusterSize > fileLength) {
                continue;
            }
            landmarks.add(l2);
            long used = Math.max(0, Math.min(l2Entries, ceilDiv(diskSize - i * bytesPerL2, clusterSize)));
            for (long j = 0; j < Math.min(l2Entries, used + 1); j++) {
                long entryAt = l2 + j * entryBytes;
                long entry = b.getLong((int) entryAt);
                String what = which + "[" + i + "] L2 entry " + j;
                if ((entry & OFLAG_COMPRESSED) != 0) {
                    target(Area.COMPRESSED, Kind.DESCRIPTOR, what + " (compressed descriptor)", entryAt, 8);
                    long[] stream = compressedRange(entry);
                    target(Area.COMPRESSED, Kind.BYTES, what + " compressed data", stream[0],
                            (int) (Math.min(fileLength, stream[1]) - stream[0]));
                    landmarks.add(stream[0]);
                } else {
                    target(Area.L2, Kind.L2_ENTRY, what, entryAt, 8);
                    if ((entry & OFFSET_MASK) != 0) {
                        landmarks.add(entry & OFFSET_MASK);
                    }
                }
                if (extendedL2) {
                    target(Area.L2, Kind.BITMAP, what + " subcluster bitmap", entryAt + 8, 8);
                }
            }
        }
    }

    /** [first byte, end) of the compressed stream a descriptor names, to the end of its last sector. */
    long[] compressedRange(long descriptor) {
        long host = descriptor & ((1L << compressedOffsetBits) - 1);
        long sectorMask = (1L << (clusterBits - COMPRESSED_FIELD_BIAS)) - 1;
        long sectors = ((descriptor >>> compressedOffsetBits) & sectorMask) + 1;
        return new long[] {host, (host & ~(long) COMPRESSED_SECTOR_MASK) + sectors * COMPRESSED_SECTOR_SIZE};
    }

    int compressedOffsetBits() {
        return compressedOffsetBits;
    }

    private static String extensionName(int type) {
        return switch (type) {
            case EXT_END -> "end-of-extensions";
            case EXT_BACKING_FORMAT -> "backing format";
            case EXT_FEATURE_NAMES -> "feature name table";
            case EXT_DATA_FILE -> "data file name";
            case 0x23852875 -> "bitmaps";
            default -> "unknown (0x" + Integer.toHexString(type) + ")";
        };
    }

    // ---- what a change can do

    /** The view that exports the active disk (snapshot null) or the named internal snapshot. */
    View view(String snapshot) {
        long viewSize = size;
        long table = l1Offset;
        int entries = l1Size;
        if (snapshot != null) {
            Snapshot s = snapshots.stream().filter(x -> x.name.equals(snapshot)).findFirst().orElseThrow();
            viewSize = s.diskSize;
            table = s.l1Offset;
            entries = s.l1Size;
        }
        List<Region> r = new ArrayList<>();
        boolean active = snapshot == null;
        header(r, HDR_MAGIC, 4, Role.ANY, "magic");
        header(r, HDR_VERSION, 4, Role.ANY, "version");
        header(r, HDR_BACKING_FILE_OFFSET, 12, Role.ANY, "backing file offset and size");
        header(r, HDR_CLUSTER_BITS, 4, Role.ANY, "cluster_bits");
        header(r, HDR_SIZE, 8, Role.ANY, "size");
        header(r, HDR_CRYPT_METHOD, 4, Role.ANY, "crypt_method");
        // The active L1 fields are validated at open whatever the view; only the active view reads the table.
        header(r, HDR_L1_SIZE, 12, active ? Role.ANY : Role.VALIDATED, "active L1 size and offset");
        header(r, HDR_REFCOUNT_TABLE_OFFSET, 12, Role.VALIDATED, "refcount table offset and size");
        header(r, HDR_NB_SNAPSHOTS, 12, active ? Role.VALIDATED : Role.ANY, "snapshot count and offset");
        if (version == 3) {
            header(r, HDR_INCOMPATIBLE_FEATURES, 8, Role.ANY, "incompatible features");
            // compatible features (80..87) may be ignored by definition: INERT
            header(r, HDR_AUTOCLEAR_FEATURES, 8, Role.ANY, "autoclear features");
            header(r, HDR_REFCOUNT_ORDER, 4, Role.VALIDATED, "refcount_order");
            header(r, HDR_HEADER_LENGTH, 4, Role.ANY, "header_length");
            if (headerLength > HDR_COMPRESSION_TYPE) {
                header(r, HDR_COMPRESSION_TYPE, 1, Role.ANY, "compression_type");
            }
        }
        for (Extension e : extensions) {
            String name = extensionName(e.type);
            r.add(new Region(e.offset, e.offset + EXT_HEADER_LENGTH, Role.ANY, 0, 0, name + " extension header"));
            Role data = switch (e.type) {
                case EXT_BACKING_FORMAT, EXT_DATA_FILE -> Role.ANY;
                case 0x23852875 -> Role.VALIDATED; // QEMU checks the bitmaps directory when autoclear bit 0 is set
                default -> Role.INERT; // feature names only name bits in messages; unknown ones are skipped
            };
            r.add(new Region(e.offset + EXT_HEADER_LENGTH, e.offset + EXT_HEADER_LENGTH + e.length, data, 0, 0,
                    name + " extension data"));
        }
        if (backingOffset != 0) {
            r.add(new Region(backingOffset, backingOffset + backingSize, Role.ANY, 0, 0, "backing file name"));
        }
        if (refcountTableBytes > 0) {
            r.add(new Region(refcountTableOffset, refcountTableOffset + refcountTableBytes, Role.VALIDATED, 0, 0,
                    "refcount table"));
        }
        if (!snapshots.isEmpty()) {
            r.add(new Region(snapshotsOffset, snapshotTableEnd, active ? Role.VALIDATED : Role.ANY, 0, 0,
                    "snapshot table"));
        }
        mapL1(r, table, entries, viewSize);
        r.sort(Comparator.comparingLong(Region::start));
        return new View(snapshot, viewSize, List.copyOf(r));
    }

    private static void header(List<Region> r, int offset, int width, Role role, String what) {
        r.add(new Region(offset, offset + width, role, 0, 0, "header " + what));
    }

    private void mapL1(List<Region> r, long table, int entries, long diskSize) {
        r.add(new Region(table, table + (long) entries * ENTRY_BYTES, Role.ANY, 0, 0, "L1 table", true));
        for (long i = 0; i < entries && i * bytesPerL2 < diskSize; i++) {
            long guestStart = i * bytesPerL2;
            long guestEnd = Math.min(diskSize, guestStart + bytesPerL2);
            long at = table + i * ENTRY_BYTES;
            r.add(new Region(at, at + ENTRY_BYTES, Role.GUEST, guestStart, guestEnd, "L1 entry " + i));
            long l2 = b.getLong((int) at) & OFFSET_MASK;
            if (l2 == 0) {
                continue;
            }
            r.add(new Region(l2, l2 + clusterSize, Role.GUEST, guestStart, guestEnd, "L2 table " + i, true));
            for (long j = 0; j < l2Entries && guestStart + j * clusterSize < diskSize; j++) {
                long gs = guestStart + j * clusterSize;
                long ge = Math.min(diskSize, gs + clusterSize);
                long entryAt = l2 + j * entryBytes;
                String what = "guest cluster " + (gs / clusterSize);
                r.add(new Region(entryAt, entryAt + entryBytes, Role.GUEST, gs, ge, what + " L2 entry"));
                long entry = b.getLong((int) entryAt);
                if ((entry & OFLAG_COMPRESSED) != 0) {
                    long[] stream = compressedRange(entry);
                    r.add(new Region(stream[0], stream[1], Role.GUEST, gs, ge, what + " compressed data"));
                } else if ((entry & OFFSET_MASK) != 0 && !externalData) {
                    long host = entry & OFFSET_MASK;
                    r.add(new Region(host, host + clusterSize, Role.GUEST, gs, ge, what + " data"));
                }
            }
        }
    }

    /**
     * The effect on view of changing the file ranges {start, end, cut} (bytes past the original end
     * included); cut is 1 for the range a shorter file lost.
     */
    static Effect effect(View view, List<long[]> changed) {
        boolean any = false;
        boolean validated = false;
        List<long[]> guest = new ArrayList<>();
        List<String> touched = new ArrayList<>();
        for (long[] c : changed) {
            for (Region reg : view.regions()) {
                if (reg.start() >= c[1]) {
                    break;
                }
                if (reg.end() <= c[0] || reg.whole() && c[2] == 0) {
                    continue;
                }
                switch (reg.role()) {
                    case ANY -> any = true;
                    case VALIDATED -> validated = true;
                    case GUEST -> guest.add(new long[] {reg.guestStart(), reg.guestEnd()});
                    case INERT -> { }
                }
                if (reg.role() != Role.INERT && touched.size() < 8) {
                    touched.add(reg.what() + " (" + reg.role() + ")");
                }
            }
        }
        return new Effect(any, validated, merge(guest), touched);
    }

    private static List<long[]> merge(List<long[]> ranges) {
        ranges.sort(Comparator.comparingLong(r -> r[0]));
        List<long[]> out = new ArrayList<>();
        for (long[] r : ranges) {
            if (!out.isEmpty() && out.get(out.size() - 1)[1] >= r[0]) {
                long[] last = out.get(out.size() - 1);
                last[1] = Math.max(last[1], r[1]);
            } else {
                out.add(new long[] {r[0], r[1]});
            }
        }
        return out;
    }

    private static long ceilDiv(long a, long b) {
        return a <= 0 ? 0 : (a + b - 1) / b;
    }
}
