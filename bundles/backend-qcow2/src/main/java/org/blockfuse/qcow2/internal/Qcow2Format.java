package org.blockfuse.qcow2.internal;

/**
 * On-disk constants of the qcow2 format (QEMU docs/interop/qcow2.txt). All integers on disk are big-endian.
 * Offsets are byte positions inside the header, a header extension or a snapshot table entry.
 */
final class Qcow2Format {

    static final int MAGIC = 0x514649FB;

    // Header fields shared by v2 and v3.
    static final int HDR_MAGIC = 0;
    static final int HDR_VERSION = 4;
    static final int HDR_BACKING_FILE_OFFSET = 8;
    static final int HDR_BACKING_FILE_SIZE = 16;
    static final int HDR_CLUSTER_BITS = 20;
    static final int HDR_SIZE = 24;
    static final int HDR_CRYPT_METHOD = 32;
    static final int HDR_L1_SIZE = 36;
    static final int HDR_L1_TABLE_OFFSET = 40;
    static final int HDR_REFCOUNT_TABLE_OFFSET = 48;
    static final int HDR_REFCOUNT_TABLE_CLUSTERS = 56;
    static final int HDR_NB_SNAPSHOTS = 60;
    static final int HDR_SNAPSHOTS_OFFSET = 64;
    static final int V2_HEADER_LENGTH = 72;

    // Fields added by v3.
    static final int HDR_INCOMPATIBLE_FEATURES = 72;
    static final int HDR_COMPATIBLE_FEATURES = 80;
    static final int HDR_AUTOCLEAR_FEATURES = 88;
    static final int HDR_REFCOUNT_ORDER = 96;
    static final int HDR_HEADER_LENGTH = 100;
    static final int V3_MIN_HEADER_LENGTH = 104;
    /** Optional v3 field, present when header_length covers it. */
    static final int HDR_COMPRESSION_TYPE = 104;

    static final int MIN_CLUSTER_BITS = 9;
    static final int MAX_CLUSTER_BITS = 21;
    /** Extended L2 needs subclusters of at least 512 bytes: 32 subclusters per cluster. */
    static final int MIN_EXTENDED_L2_CLUSTER_BITS = 14;
    static final int MAX_REFCOUNT_ORDER = 6;
    static final int DEFAULT_REFCOUNT_ORDER = 4;

    // Incompatible feature bits.
    static final long INCOMPAT_DIRTY = 1L;
    static final long INCOMPAT_CORRUPT = 1L << 1;
    static final long INCOMPAT_DATA_FILE = 1L << 2;
    static final long INCOMPAT_COMPRESSION = 1L << 3;
    static final long INCOMPAT_EXTENDED_L2 = 1L << 4;
    static final long INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE
            | INCOMPAT_COMPRESSION | INCOMPAT_EXTENDED_L2;

    // Autoclear feature bits.
    static final long AUTOCLEAR_DATA_FILE_RAW = 1L << 1;

    static final int CRYPT_NONE = 0;
    static final int CRYPT_AES = 1;
    static final int CRYPT_LUKS = 2;

    static final int COMPRESSION_ZLIB = 0;
    static final int COMPRESSION_ZSTD = 1;

    // Header extensions: type, length, data padded to 8 bytes.
    static final int EXT_HEADER_LENGTH = 8;
    static final int EXT_ALIGNMENT = 8;
    static final int EXT_END = 0;
    static final int EXT_BACKING_FORMAT = 0xE2792ACA;
    static final int EXT_FEATURE_NAMES = 0x6803F857;
    static final int EXT_DATA_FILE = 0x44415441;
    /** QEMU rejects backing format strings of 16 bytes or more. */
    static final int MAX_BACKING_FORMAT_LENGTH = 15;
    static final int FEATURE_NAME_ENTRY = 48;
    static final int FEATURE_NAME_LENGTH = 46;
    static final int FEATURE_TYPE_INCOMPATIBLE = 0;

    static final int MAX_BACKING_NAME_LENGTH = 1023;

    // L1 and L2 entries.
    /** Bits 9..55: host offset of an L2 table or a data cluster. */
    static final long OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00L;
    static final long OFLAG_COPIED = 1L << 63;
    static final long OFLAG_COMPRESSED = 1L << 62;
    static final long OFLAG_ZERO = 1L;
    static final int ENTRY_BYTES = Long.BYTES;
    static final int STANDARD_L2_WORDS = 1;
    static final int EXTENDED_L2_WORDS = 2;
    static final int SUBCLUSTERS_PER_CLUSTER = 32;
    static final int SUBCLUSTER_BITS = 5;
    static final long SUBCLUSTER_ALLOC_MASK = 0xFFFF_FFFFL;
    static final int SUBCLUSTER_ZERO_SHIFT = 32;

    /** Compressed descriptors count 512-byte sectors; the sector field is cluster_bits - 8 wide. */
    static final int COMPRESSED_SECTOR_SIZE = 512;
    static final int COMPRESSED_SECTOR_MASK = COMPRESSED_SECTOR_SIZE - 1;
    static final int COMPRESSED_FIELD_BIAS = 8;
    static final int COMPRESSED_FIELD_TOP = 62;
    /** Host offsets of everything the tables point at lie below 2^56. */
    static final int HOST_OFFSET_BITS = 56;

    /** QEMU caps the active and snapshot L1 tables at 32 MiB. */
    static final long MAX_L1_BYTES = 32L << 20;
    static final long MAX_REFCOUNT_TABLE_BYTES = 8L << 20;

    // Snapshot table entry.
    static final int SN_L1_TABLE_OFFSET = 0;
    static final int SN_L1_SIZE = 8;
    static final int SN_ID_SIZE = 12;
    static final int SN_NAME_SIZE = 14;
    static final int SN_DATE_SEC = 16;
    static final int SN_DATE_NSEC = 20;
    static final int SN_VM_CLOCK_NSEC = 24;
    static final int SN_VM_STATE_SIZE = 32;
    static final int SN_EXTRA_DATA_SIZE = 36;
    static final int SN_FIXED_LENGTH = 40;
    /** Offsets inside the extra data. */
    static final int SN_EXTRA_VM_STATE_SIZE_LARGE = 0;
    static final int SN_EXTRA_DISK_SIZE = 8;
    static final int SN_ENTRY_ALIGNMENT = 8;
    static final int MAX_SNAPSHOTS = 65536;
    static final int MAX_SNAPSHOT_EXTRA_DATA = 1024;
    static final long MAX_SNAPSHOT_TABLE_BYTES = 64L << 20;

    /** QEMU exposes the virtual size rounded down to whole 512-byte sectors. */
    static final long SECTOR_MASK = 511;

    private Qcow2Format() {
    }

    static long alignUp(long value, long alignment) {
        return (value + alignment - 1) & -alignment;
    }
}
