package org.blockfuse.qcow2.internal;

import static org.blockfuse.qcow2.internal.Qcow2Format.*;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One qcow2 image: guest offsets are translated through L1 and L2 tables to the image file, an external
 * data file, a compressed stream, zeros or the backing layer. Lookups are lock-free apart from the short
 * cache locks; all file access is positional.
 */
final class Qcow2Layer implements Layer {

    // What a guest range maps to (QEMU's cluster types folded to what a reader does with them).
    private static final int NORMAL = 0;
    private static final int ZERO = 1;
    private static final int UNALLOCATED = 2;
    private static final int COMPRESSED = 3;

    private static final long DECOMPRESSED_CACHE_BYTES = 8L << 20;
    private static final int MIN_DECOMPRESSED_ENTRIES = 2;
    private static final int MAX_DECOMPRESSED_ENTRIES = 16;

    private final ImageFile file;
    private final ImageFile dataFile;
    private final boolean externalData;
    private final Layer backing;
    private final long size;
    private final int version;
    private final long[] l1;
    private final L2TableCache l2Cache;
    private final ClusterDecompressor decompressor;
    private final DecompressedClusterCache decompressed;
    private final ReadFailureLog failures;
    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    private final int clusterBits;
    private final long clusterSize;
    private final long clusterMask;
    private final int l2Bits;
    private final long l2IndexMask;
    private final long bytesPerL2;
    private final boolean extendedL2;
    private final int wordsPerEntry;
    private final int subclusterBits;
    private final int compressedOffsetBits;
    private final long compressedSectorsMask;

    /** Scratch result of {@link #resolve}; one per call chain, never shared between threads. */
    private static final class Piece {
        int kind;
        long host;
        long length;
    }

    /**
     * Per-thread scratch of this layer, so that the read path allocates nothing once warm. A layer never
     * re-enters itself (backing layers are other objects with their own scratch).
     */
    private static final class Scratch {
        final Piece piece = new Piece();
        final Piece next = new Piece();
        /** Compressed bytes as read from the file (direct, so the read is a plain pread); grows on demand. */
        ByteBuffer compressed;
        /** The decoded prefix (partialValid bytes) of the compressed cluster partialDescriptor. */
        byte[] partial;
        ByteBuffer partialBuffer;
        long partialDescriptor;
        int partialValid;
    }

    Qcow2Layer(ImageFile file, Qcow2Header header, long size, long[] l1, ImageFile dataFile, Layer backing,
               long l2CacheBytes, ClusterDecompressor decompressor) {
        this.file = file;
        this.dataFile = dataFile == null ? file : dataFile;
        this.externalData = dataFile != null;
        this.backing = backing;
        this.size = size;
        this.version = header.version;
        this.l1 = l1;
        this.decompressor = decompressor;
        this.failures = new ReadFailureLog(file.path().toString());
        this.clusterBits = header.clusterBits;
        this.clusterSize = header.clusterSize;
        this.clusterMask = clusterSize - 1;
        this.extendedL2 = header.extendedL2();
        this.wordsPerEntry = extendedL2 ? EXTENDED_L2_WORDS : STANDARD_L2_WORDS;
        long l2Entries = clusterSize / ((long) ENTRY_BYTES * wordsPerEntry);
        this.l2Bits = Long.numberOfTrailingZeros(l2Entries);
        this.l2IndexMask = l2Entries - 1;
        this.bytesPerL2 = clusterSize << l2Bits;
        this.subclusterBits = clusterBits - SUBCLUSTER_BITS;
        this.compressedOffsetBits = COMPRESSED_FIELD_TOP - (clusterBits - COMPRESSED_FIELD_BIAS);
        this.compressedSectorsMask = (1L << (clusterBits - COMPRESSED_FIELD_BIAS)) - 1;
        this.l2Cache = new L2TableCache(l2CacheBytes, clusterSize, this::loadL2);
        int entries = (int) Math.max(MIN_DECOMPRESSED_ENTRIES,
                Math.min(MAX_DECOMPRESSED_ENTRIES, DECOMPRESSED_CACHE_BYTES / clusterSize));
        this.decompressed = new DecompressedClusterCache(entries);
    }

    /** Reads an L1 table that {@link Qcow2Header#validateL1} has already bounded and placed inside the file. */
    static long[] readL1(ImageFile file, long offset, int entries) throws IOException {
        ByteBuffer raw = ByteBuffer.allocate(entries * ENTRY_BYTES);
        file.readFully(offset, raw);
        long[] table = new long[entries];
        raw.flip().asLongBuffer().get(table);
        return table;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        long end = offset + dst.remaining();
        Scratch s = scratch.get();
        Piece piece = s.piece;
        Piece next = s.next;
        long pos = offset;
        while (pos < end) {
            resolve(pos, end - pos, piece);
            long length = piece.length;
            switch (piece.kind) {
                case NORMAL -> {
                    // Merge following clusters that continue the same host run into one file read.
                    while (pos + length < end) {
                        resolve(pos + length, end - pos - length, next);
                        if (next.kind != NORMAL || next.host != piece.host + length) {
                            break;
                        }
                        length += next.length;
                    }
                    readData(pos, piece.host, length, dst);
                }
                case ZERO -> Buffers.zero(dst, length);
                case UNALLOCATED -> readBacking(pos, length, dst);
                case COMPRESSED -> readCompressed(pos, piece.host, (int) length, dst, s);
                default -> throw new IllegalStateException("unknown piece kind " + piece.kind);
            }
            pos += length;
        }
    }

    @Override
    public long status(long offset, long maxLength) throws IOException {
        Piece piece = scratch.get().piece;
        resolve(offset, maxLength, piece);
        long length = piece.length;
        return switch (piece.kind) {
            case NORMAL, COMPRESSED -> length;
            case ZERO -> -length;
            default -> {
                if (backing != null && offset < backing.size()) {
                    yield backing.status(offset, Math.min(length, backing.size() - offset));
                }
                yield -length;
            }
        };
    }

    /**
     * Maps guest offset pos to a piece of at most maxLength bytes of one kind. The piece ends at the end of
     * the cluster (subcluster run with extended L2), or at the end of the L2 range when no table maps it.
     */
    private void resolve(long pos, long maxLength, Piece out) throws IOException {
        long inCluster = pos & clusterMask;
        long l1Index = pos >>> (clusterBits + l2Bits);
        if (l1Index >= l1.length) {
            // Past the L1 table (a snapshot's disk may be larger than its table covers): all unallocated, in one
            // piece, so that an extent scan of a huge disk takes one step and not one per L2 range.
            out.kind = UNALLOCATED;
            out.length = maxLength;
            return;
        }
        long l2Offset = l1[(int) l1Index] & OFFSET_MASK;
        if (l2Offset == 0) {
            out.kind = UNALLOCATED;
            out.length = Math.min(maxLength, bytesPerL2 - (pos & (bytesPerL2 - 1)));
            return;
        }
        if ((l2Offset & clusterMask) != 0) {
            throw failures.failure("L2 table offset unaligned (L1 index " + l1Index + ")", pos, l2Offset, null);
        }
        int l2Index = (int) ((pos >>> clusterBits) & l2IndexMask);
        long entry = l2Word(pos, l2Offset, l2Index * wordsPerEntry);
        long toClusterEnd = clusterSize - inCluster;
        if ((entry & OFLAG_COMPRESSED) != 0) {
            if (externalData) {
                throw failures.failure("compressed cluster in an image with an external data file", pos, entry, null);
            }
            if (extendedL2 && l2Word(pos, l2Offset, l2Index * wordsPerEntry + 1) != 0) {
                throw failures.failure("compressed cluster with a subcluster bitmap", pos, l2Offset, null);
            }
            out.kind = COMPRESSED;
            out.host = entry;
            out.length = Math.min(maxLength, toClusterEnd);
            return;
        }
        long host = entry & OFFSET_MASK;
        // With an external data file guest cluster 0 maps to host offset 0; the COPIED flag tells it apart.
        boolean allocated = host != 0 || (externalData && (entry & OFLAG_COPIED) != 0);
        if (!extendedL2) {
            out.length = Math.min(maxLength, toClusterEnd);
            if ((entry & OFLAG_ZERO) != 0) {
                if (version < 3) {
                    throw failures.failure("zero cluster entry found in a version 2 image", pos, l2Offset, null);
                }
                out.kind = ZERO;
            } else if (!allocated) {
                out.kind = UNALLOCATED;
            } else {
                out.kind = NORMAL;
                out.host = checkedDataOffset(pos, host) + inCluster;
            }
            return;
        }
        long bitmap = l2Word(pos, l2Offset, l2Index * wordsPerEntry + 1);
        long allocBits = bitmap & SUBCLUSTER_ALLOC_MASK;
        long zeroBits = bitmap >>> SUBCLUSTER_ZERO_SHIFT;
        if ((allocBits & zeroBits) != 0 || (!allocated && allocBits != 0)) {
            throw failures.failure("invalid extended L2 entry", pos, l2Offset, null);
        }
        int first = (int) (inCluster >>> subclusterBits);
        int kind = subclusterKind(first, allocBits, zeroBits);
        int last = first + 1;
        while (last < SUBCLUSTERS_PER_CLUSTER && subclusterKind(last, allocBits, zeroBits) == kind) {
            last++;
        }
        out.kind = kind;
        out.length = Math.min(maxLength, ((long) last << subclusterBits) - inCluster);
        if (kind == NORMAL) {
            out.host = checkedDataOffset(pos, host) + inCluster;
        }
    }

    private static int subclusterKind(int index, long allocBits, long zeroBits) {
        if ((zeroBits & (1L << index)) != 0) {
            return ZERO;
        }
        return (allocBits & (1L << index)) != 0 ? NORMAL : UNALLOCATED;
    }

    private long checkedDataOffset(long pos, long host) throws IOException {
        if ((host & clusterMask) != 0) {
            throw failures.failure("data cluster offset unaligned", pos, host, null);
        }
        if (externalData && host != (pos & ~clusterMask)) {
            throw failures.failure("external data file offset does not match the guest offset", pos, host, null);
        }
        return host;
    }

    private long l2Word(long pos, long l2Offset, int index) throws IOException {
        try {
            return l2Cache.word(l2Offset, index);
        } catch (EOFException e) {
            throw failures.failure("L2 table beyond end of file", pos, l2Offset, null);
        }
    }

    private long[] loadL2(long l2Offset) throws IOException {
        if (l2Offset > file.length() - clusterSize) {
            throw new EOFException();
        }
        ByteBuffer raw = ByteBuffer.allocate((int) clusterSize).order(ByteOrder.BIG_ENDIAN);
        file.readFully(l2Offset, raw);
        long[] table = new long[(int) (clusterSize / ENTRY_BYTES)];
        raw.flip().asLongBuffer().get(table);
        return table;
    }

    private void readData(long pos, long host, long length, ByteBuffer dst) throws IOException {
        if (host > dataFile.length() - length) {
            throw failures.failure("data cluster beyond end of file", pos, host, null);
        }
        int oldLimit = Buffers.window(dst, length);
        try {
            dataFile.readFully(host, dst);
        } catch (EOFException e) {
            throw failures.failure("data cluster beyond end of file", pos, host, e);
        } finally {
            dst.limit(oldLimit);
        }
    }

    private void readBacking(long pos, long length, ByteBuffer dst) throws IOException {
        long fromBacking = backing == null ? 0 : Math.max(0, Math.min(length, backing.size() - pos));
        if (fromBacking > 0) {
            int oldLimit = Buffers.window(dst, fromBacking);
            try {
                backing.read(pos, dst);
            } finally {
                dst.limit(oldLimit);
            }
        }
        Buffers.zero(dst, length - fromBacking);
    }

    /**
     * Copies length bytes of the compressed cluster at pos into dst. A read of the whole cluster expands it
     * straight into dst. A smaller read is served from the cache of expanded clusters or from the prefix
     * this thread decoded last. Otherwise the first read of a cluster decodes only what it needs into the
     * thread's scratch (with deflate just the prefix up to the end of the read, as it cannot start in the
     * middle) and leaves a mark; a read of a marked cluster (a sequential reader, maybe on another thread)
     * expands it whole into the shared cache, so the remaining reads are plain copies.
     */
    private void readCompressed(long pos, long descriptor, int length, ByteBuffer dst, Scratch s)
            throws IOException {
        int from = (int) (pos & clusterMask);
        int to = from + length;
        int cluster = (int) clusterSize;
        byte[] cached = decompressed.get(descriptor);
        if (cached == DecompressedClusterCache.BROKEN) {
            throw failures.failure("compressed cluster does not decode (found before)", pos,
                    descriptor & ((1L << compressedOffsetBits) - 1), null);
        }
        if (length == cluster) {
            int oldLimit = Buffers.window(dst, length);
            try {
                decompress(pos, descriptor, dst, s);
            } finally {
                dst.limit(oldLimit);
            }
            return;
        }
        if (cached != null && cached != DecompressedClusterCache.SEEN) {
            dst.put(cached, from, length);
            return;
        }
        if (s.partialDescriptor == descriptor && s.partialValid >= to) {
            dst.put(s.partial, from, length);
            return;
        }
        if (s.partial == null) {
            s.partial = new byte[cluster];
            s.partialBuffer = ByteBuffer.wrap(s.partial);
        }
        if (cached == DecompressedClusterCache.SEEN) {
            // Expand into the thread's scratch and copy the cluster out once it decoded: a damaged cluster read
            // piece by piece then fails each read without allocating a cluster for it.
            s.partialValid = 0;
            decompress(pos, descriptor, s.partialBuffer.clear(), s);
            s.partialDescriptor = descriptor;
            s.partialValid = cluster;
            byte[] whole = s.partial.clone();
            decompressed.put(descriptor, whole);
            dst.put(whole, from, length);
            return;
        }
        int want = decompressor.prefixIsCheaper() ? to : cluster;
        s.partialValid = 0;
        decompress(pos, descriptor, s.partialBuffer.clear().limit(want), s);
        s.partialDescriptor = descriptor;
        s.partialValid = want;
        decompressed.mark(descriptor);
        dst.put(s.partial, from, length);
    }

    /** Reads the compressed stream behind descriptor and decodes the first out.remaining() bytes of it. */
    private void decompress(long pos, long descriptor, ByteBuffer out, Scratch s) throws IOException {
        long hostOffset = descriptor & ((1L << compressedOffsetBits) - 1);
        long sectors = ((descriptor >>> compressedOffsetBits) & compressedSectorsMask) + 1;
        if ((hostOffset >>> HOST_OFFSET_BITS) != 0 || hostOffset >= file.length()) {
            throw failures.failure("compressed cluster beyond end of file", pos, hostOffset, null);
        }
        long compressedLength = sectors * COMPRESSED_SECTOR_SIZE - (hostOffset & COMPRESSED_SECTOR_MASK);
        // The last compressed cluster may end the file inside its final sector: clamp instead of failing.
        int readable = (int) Math.min(compressedLength, file.length() - hostOffset);
        // One spare zero byte: raw inflate may want a byte past the stream end before it reports completion.
        ByteBuffer src = s.compressed;
        if (src == null || src.capacity() < readable + 1) {
            src = ByteBuffer.allocateDirect(Math.max(readable + 1, (int) Math.min(clusterSize + 1, 2L << 20)));
            s.compressed = src;
        }
        src.clear().limit(readable);
        file.readFully(hostOffset, src);
        src.limit(readable + 1).put(readable, (byte) 0).position(0);
        try {
            decompressor.decompress(src, out, (int) clusterSize);
        } catch (IOException e) {
            // the image is never written: a stream that does not decode now never will, so later reads
            // of it fail at once instead of decoding up to a whole cluster again for every small read
            decompressed.put(descriptor, DecompressedClusterCache.BROKEN);
            throw failures.failure(e.getMessage(), pos, hostOffset, e);
        }
    }

    @Override
    public void close() throws IOException {
        try (ImageFile f = file; Layer b = backing; ClusterDecompressor d = decompressor) {
            if (externalData) {
                dataFile.close();
            }
        }
    }
}
