package org.blockfuse.qcow2.internal;

import static org.blockfuse.qcow2.internal.Qcow2Format.*;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.blockfuse.qcow2.internal.ImageLayout.Area;
import org.blockfuse.qcow2.internal.ImageLayout.Target;

/**
 * Makes one mutant of a valid image: one to four changes, each aimed at a structure the layout found
 * (header fields, extensions, backing name, L1/L2 entries, compressed descriptors and data, refcounts,
 * snapshot table) or at the file length. Values are bit flips, random values, boundary values (0, -1,
 * off-by-one, the largest of the width) and offsets chosen to hurt: past EOF, at EOF, unaligned, into the
 * image's own metadata. The same Random always gives the same mutant.
 */
final class ImageMutator {

    /** One changed stretch of the file: bytes written at offset (possibly past the original end). */
    record Patch(long offset, byte[] bytes) {
    }

    /**
     * A mutant: patches applied in order, then the file cut to (or grown to) newLength when that is not -1.
     * Grown bytes not covered by a patch are zeros.
     */
    record Mutant(List<Patch> patches, long newLength, List<String> description) {
        /** The file ranges {start, end, cut} that may differ from the original, for {@link ImageLayout#effect}. */
        List<long[]> changed(long originalLength) {
            List<long[]> out = new ArrayList<>();
            for (Patch p : patches) {
                out.add(new long[] {p.offset, p.offset + p.bytes.length, 0});
            }
            if (newLength >= 0) {
                out.add(new long[] {Math.min(newLength, originalLength), Math.max(newLength, originalLength),
                    newLength < originalLength ? 1 : 0});
            }
            return out;
        }
    }

    private static final Map<Area, Integer> WEIGHTS = new EnumMap<>(Map.of(
            Area.HEADER, 20, Area.EXTENSIONS, 10, Area.BACKING_NAME, 6, Area.L1, 12, Area.L2, 16,
            Area.COMPRESSED, 14, Area.REFCOUNT, 6, Area.SNAPSHOTS, 8, Area.SLACK, 3));
    private static final int LENGTH_WEIGHT = 5;
    private static final int[] EXT_MAGICS = {EXT_END, EXT_BACKING_FORMAT, EXT_FEATURE_NAMES, EXT_DATA_FILE,
        0x23852875, 0x0537BE77, 0x12345678};

    private final ImageLayout layout;
    private final Map<Area, List<Target>> byArea = new EnumMap<>(Area.class);
    private final List<String> names;
    private final byte[] original;

    /** names: file names worth giving as backing or data file (existing, missing, wrong kinds, itself). */
    ImageMutator(ImageLayout layout, byte[] original, List<String> names) {
        this.layout = layout;
        this.original = original;
        this.names = names;
        for (Target t : layout.targets()) {
            byArea.computeIfAbsent(t.area(), a -> new ArrayList<>()).add(t);
        }
    }

    Mutant mutate(Random r) {
        List<Patch> patches = new ArrayList<>();
        List<String> description = new ArrayList<>();
        long newLength = -1;
        int changes = r.nextInt(10) < 7 ? 1 : 2 + r.nextInt(3);
        for (int i = 0; i < changes; i++) {
            Area area = pickArea(r);
            if (area == null) {
                newLength = newLength(r);
                description.add("file length " + layout.fileLength + " -> " + newLength);
                continue;
            }
            List<Target> candidates = byArea.get(area);
            Target t = candidates.get(r.nextInt(candidates.size()));
            mutate(t, r, patches, description);
        }
        return new Mutant(patches, newLength, description);
    }

    /** A weighted pick among the areas this image has; null means "change the file length". */
    private Area pickArea(Random r) {
        int total = LENGTH_WEIGHT;
        for (Area a : byArea.keySet()) {
            total += WEIGHTS.get(a);
        }
        int x = r.nextInt(total);
        for (Area a : byArea.keySet()) {
            x -= WEIGHTS.get(a);
            if (x < 0) {
                return a;
            }
        }
        return null;
    }

    private void mutate(Target t, Random r, List<Patch> patches, List<String> description) {
        switch (t.kind()) {
            case BYTES -> bytes(t, r, patches, description);
            case BACKING_NAME -> {
                if (!damagedInPlace(t, t.offset(), r, patches, description)) {
                    backingName(t, r, patches, description);
                }
            }
            case EXT_STRING -> {
                if (!damagedInPlace(t, t.offset() + EXT_HEADER_LENGTH, r, patches, description)) {
                    extensionString(t, r, patches, description);
                }
            }
            default -> {
                long old = read(t.offset(), t.width());
                long value = value(t, old, r);
                patches.add(new Patch(t.offset(), encode(value, t.width())));
                description.add(t.what() + " @" + t.offset() + ": 0x" + Long.toHexString(old) + " -> 0x"
                        + Long.toHexString(truncate(value, t.width())));
            }
        }
    }

    /** A third of the time, damages a name where it lies (bit flips, random or zero bytes); true if it did. */
    private boolean damagedInPlace(Target t, long at, Random r, List<Patch> patches, List<String> description) {
        if (t.width() == 0 || r.nextInt(3) != 0) {
            return false;
        }
        bytes(new Target(t.area(), ImageLayout.Kind.BYTES, t.what(), at, t.width()), r, patches, description);
        return true;
    }

    /** Replaces the backing file name and sets backing_file_size to match. */
    private void backingName(Target t, Random r, List<Patch> patches, List<String> description) {
        byte[] name = name(r);
        long room = Math.max(0, Math.min(layout.clusterSize, layout.fileLength) - t.offset());
        patches.add(new Patch(t.offset(), java.util.Arrays.copyOf(name, (int) Math.min(name.length, room))));
        patches.add(new Patch(HDR_BACKING_FILE_SIZE, ByteBuffer.allocate(4).putInt(name.length).array()));
        description.add(t.what() + " -> " + printable(name));
    }

    /** Replaces a string extension (backing format, data file name) and sets its length to match. */
    private void extensionString(Target t, Random r, List<Patch> patches, List<String> description) {
        byte[] name = r.nextInt(3) == 0 ? formatName(r) : name(r);
        long room = Math.max(0, Math.min(layout.clusterSize, layout.fileLength) - t.offset() - EXT_HEADER_LENGTH);
        patches.add(new Patch(t.offset() + EXT_HEADER_LENGTH,
                java.util.Arrays.copyOf(name, (int) Math.min(name.length, room))));
        patches.add(new Patch(t.offset() + 4, ByteBuffer.allocate(4).putInt(name.length).array()));
        description.add(t.what() + " -> " + printable(name));
    }

    private long value(Target t, long old, Random r) {
        int bits = t.width() * 8;
        switch (r.nextInt(6)) {
            case 0:
                return old ^ (1L << r.nextInt(bits));
            case 1:
                return old ^ (1L << r.nextInt(bits)) ^ (1L << r.nextInt(bits)) ^ (1L << r.nextInt(bits));
            case 2:
                return r.nextLong();
            case 3:
                return boundary(old, bits, r);
            default:
                break;
        }
        return switch (t.kind()) {
            case MAGIC -> r.nextBoolean() ? MAGIC ^ 0x100 : 0x514649FC;
            case VERSION -> new long[] {0, 1, 2, 3, 4, -1, 0x100000003L}[r.nextInt(7)];
            case SMALL_INT -> r.nextInt(72) - 4;
            case FEATURES -> old ^ (1L << (r.nextInt(4) == 0 ? r.nextInt(64) : r.nextInt(6)));
            case EXT_TYPE -> EXT_MAGICS[r.nextInt(EXT_MAGICS.length)];
            case COUNT -> count(old, r);
            case OFFSET -> offset(r);
            case L1_ENTRY, L2_ENTRY -> tableEntry(old, r);
            case BITMAP -> bitmap(old, r);
            case DESCRIPTOR -> descriptor(old, r);
            default -> r.nextLong();
        };
    }

    private static long boundary(long old, int bits, Random r) {
        long max = bits == 64 ? -1L : (1L << bits) - 1;
        long signedMax = max >>> 1;
        long[] values = {0, max, 1, old + 1, old - 1, signedMax, signedMax + 1, old << 1, old >>> 1,
            1L << r.nextInt(bits)};
        return values[r.nextInt(values.length)];
    }

    private long count(long old, Random r) {
        long[] values = {0, 1, 2, old + 1, old - 1, old * 2, old + 8, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF,
            0xFFFFFFFFL, 0x80000000L, 1L << 20, 1L << 22, (1L << 22) + 1, 1L << 24, layout.fileLength,
            layout.clusterSize, layout.clusterSize - 1, layout.clusterSize + 1, 1023, 1024, 1L << 40, 1L << 62,
            Long.MAX_VALUE, -1};
        return values[r.nextInt(values.length)];
    }

    /** A host offset chosen to hurt: past or at EOF, unaligned, into metadata, at the top of the range. */
    private long offset(Random r) {
        long len = layout.fileLength;
        long cs = layout.clusterSize;
        long landmark = layout.landmarks.get(r.nextInt(layout.landmarks.size()));
        long[] values = {0, cs, len, len - 1, len - cs, alignDown(len, cs), alignDown(len, cs) + cs, len + cs,
            1L << 55, (1L << 56) - cs, 1L << 56, Long.MAX_VALUE, -cs, landmark, landmark + 1, landmark + 512,
            landmark - cs, landmark + cs, landmark + 8, 0x00FF_FFFF_FFFF_FE00L};
        return values[r.nextInt(values.length)];
    }

    private long tableEntry(long old, Random r) {
        long flags = old & ~OFFSET_MASK;
        return switch (r.nextInt(8)) {
            case 0 -> flags | (offset(r) & OFFSET_MASK);
            case 1 -> offset(r); // raw, reserved bits and all
            case 2 -> old + layout.clusterSize;
            case 3 -> old ^ OFLAG_COMPRESSED;
            case 4 -> old ^ OFLAG_ZERO;
            case 5 -> old ^ (1L << (1 + r.nextInt(8))) ^ (r.nextBoolean() ? 1L << (56 + r.nextInt(6)) : 0);
            case 6 -> old ^ OFLAG_COPIED;
            default -> read(randomTableEntry(r), 8); // another entry's value: two clusters, one host cluster
        };
    }

    private long randomTableEntry(Random r) {
        List<Target> l2 = byArea.getOrDefault(Area.L2, byArea.getOrDefault(Area.L1, List.of()));
        if (l2.isEmpty()) {
            return 0;
        }
        return l2.get(r.nextInt(l2.size())).offset();
    }

    private static long bitmap(long old, Random r) {
        return switch (r.nextInt(5)) {
            case 0 -> old | (old << 32); // a subcluster both allocated and zero
            case 1 -> -1L;
            case 2 -> 0xFFFF_FFFFL;
            case 3 -> old ^ (1L << r.nextInt(32));
            default -> old >>> 32 | old << 32;
        };
    }

    private long descriptor(long old, Random r) {
        int x = layout.compressedOffsetBits();
        long hostMask = (1L << x) - 1;
        long sectorMask = (1L << (layout.clusterBits - COMPRESSED_FIELD_BIAS)) - 1;
        long flags = old & (OFLAG_COMPRESSED | OFLAG_COPIED);
        long host = old & hostMask;
        long sectors = (old >>> x) & sectorMask;
        long len = layout.fileLength;
        switch (r.nextInt(6)) {
            case 0 -> sectors = new long[] {0, sectorMask, sectors + 1, sectors - 1, r.nextLong()}[r.nextInt(5)];
            case 1 -> host = new long[] {len, len - 1, len - 8, len - 512, len + 1, 0, hostMask, host + 1, host - 1,
                host + 512, host - 512, offset(r)}[r.nextInt(12)];
            case 2 -> {
                host = offset(r);
                sectors = sectorMask;
            }
            case 3 -> flags ^= OFLAG_COPIED;
            case 4 -> flags ^= OFLAG_COMPRESSED; // the same bits read as a standard descriptor
            default -> host = read(randomDescriptor(r), 8) & hostMask; // another cluster's stream
        }
        return flags | ((sectors & sectorMask) << x) | (host & hostMask);
    }

    private long randomDescriptor(Random r) {
        List<Target> c = byArea.get(Area.COMPRESSED).stream()
                .filter(t -> t.kind() == ImageLayout.Kind.DESCRIPTOR).toList();
        return c.get(r.nextInt(c.size())).offset();
    }

    private void bytes(Target t, Random r, List<Patch> patches, List<String> description) {
        int at = r.nextInt(t.width());
        int n = Math.min(t.width() - at, 1 + r.nextInt(r.nextInt(4) == 0 ? 512 : 16));
        byte[] bytes = new byte[n];
        String how;
        switch (r.nextInt(5)) {
            case 0 -> {
                r.nextBytes(bytes);
                how = "random";
            }
            case 1 -> how = "zeros";
            case 2 -> {
                java.util.Arrays.fill(bytes, (byte) 0xFF);
                how = "0xff";
            }
            case 3 -> {
                System.arraycopy(original, (int) (t.offset() + at), bytes, 0, n);
                bytes[r.nextInt(n)] ^= (byte) (1 << r.nextInt(8));
                how = "one bit flipped";
            }
            default -> {
                int from = r.nextInt(Math.max(1, original.length - n));
                System.arraycopy(original, from, bytes, 0, Math.min(n, original.length - from));
                how = "bytes copied from " + from;
            }
        }
        patches.add(new Patch(t.offset() + at, bytes));
        description.add(t.what() + ": " + n + " bytes at +" + at + " set to " + how);
    }

    private long newLength(Random r) {
        long len = layout.fileLength;
        long landmark = layout.landmarks.get(r.nextInt(layout.landmarks.size()));
        long[] values = {r.nextLong(len) , landmark, landmark + 1, landmark + 8, landmark + 512, landmark - 1,
            len - 1, len - 512, len - layout.clusterSize, len + 1, len + 512, len + layout.clusterSize, 0, 72, 104,
            layout.clusterSize};
        return Math.max(0, values[r.nextInt(values.length)]);
    }

    private byte[] name(Random r) {
        String n;
        int pick = r.nextInt(names.size() + 6);
        if (pick < names.size()) {
            n = names.get(pick);
        } else {
            n = switch (pick - names.size()) {
                case 0 -> "a".repeat(1023);
                case 1 -> "b".repeat(1024);
                case 2 -> "";
                case 3 -> "back.qcow2\0junk";
                case 4 -> new String(new byte[] {(byte) 0xFF, (byte) 0xFE, 'x'}, StandardCharsets.ISO_8859_1);
                default -> "x".repeat(r.nextInt(64));
            };
        }
        return n.getBytes(StandardCharsets.ISO_8859_1);
    }

    private static byte[] formatName(Random r) {
        String[] formats = {"raw", "qcow2", "qcow", "vmdk", "", "qcow2qcow2qcow2q", "qcow2qcow2qcow2", "raw\0"};
        return formats[r.nextInt(formats.length)].getBytes(StandardCharsets.ISO_8859_1);
    }

    private long read(long offset, int width) {
        long v = 0;
        for (int i = 0; i < width; i++) {
            v = v << 8 | (original[(int) offset + i] & 0xFF);
        }
        return v;
    }

    private static byte[] encode(long value, int width) {
        byte[] out = new byte[width];
        for (int i = width - 1; i >= 0; i--) {
            out[i] = (byte) value;
            value >>>= 8;
        }
        return out;
    }

    private static long truncate(long value, int width) {
        return width == 8 ? value : value & ((1L << (width * 8)) - 1);
    }

    private static long alignDown(long v, long a) {
        return v & -a;
    }

    private static String printable(byte[] name) {
        String s = new String(name, StandardCharsets.ISO_8859_1);
        String shown = s.length() > 40 ? s.substring(0, 40) + "...(" + s.length() + " bytes)" : s;
        return "'" + shown.replace("\0", "\\0") + "'";
    }
}
