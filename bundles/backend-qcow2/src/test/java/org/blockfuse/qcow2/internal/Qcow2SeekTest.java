package org.blockfuse.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackend.Extent;
import org.blockfuse.qcow2.Capability;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * SEEK_DATA / SEEK_HOLE over every image kind the reader supports. Two properties, checked against QEMU:
 * every byte inside a reported hole reads as zero in {@code qemu-img convert -O raw} (a wrong hole makes
 * hole-aware copiers drop data), and the reported holes cover what {@code qemu-img map} calls
 * {@code "data": false}, since the qcow2 metadata says as much. All data is random, so a hole reported over
 * data is always caught, and the seeks start from offsets that need not be cluster aligned.
 */
class Qcow2SeekTest {

    private static final int KIB = 1024;
    private static final int MIB = 1024 * KIB;
    /** QEMU sizes disks in 512-byte sectors. */
    private static final int SECTOR = 512;
    /** Random bytes that qemu-io copies into the images (write -s); as large as the largest write. */
    private static final String NOISE = "noise.bin";
    private static final int NOISE_BYTES = 5 * MIB;
    private static final int[] RANDOM_CLUSTERS = {512, 1024, 4 * KIB, 16 * KIB, 64 * KIB, 2 * MIB};
    private static final int RANDOM_MAX_LAYERS = 3;
    private static final int RANDOM_MAX_SIZE = 8 * MIB;
    private static final int RANDOM_WRITES = 12;
    /** Seeks from random offsets besides the ones at and around every extent boundary. */
    private static final int RANDOM_PROBES = 200;
    private static final Pattern MAP_ENTRY = Pattern.compile(
            "\"start\": (\\d+), \"length\": (\\d+),[^}]*\"data\": (true|false)");

    private QemuTool qemu;
    private Random random;

    @BeforeEach
    void setUp() throws IOException {
        Capability.requireQemu();
        qemu = new QemuTool();
        random = new Random(7);
        byte[] noise = new byte[NOISE_BYTES];
        random.nextBytes(noise);
        Files.write(qemu.path(NOISE), noise);
    }

    @AfterEach
    void tearDown() throws IOException {
        if (qemu != null) {
            qemu.close();
        }
    }

    /** qemu-io "write -s": length random bytes at offset. */
    private static String data(long offset, long length) {
        return "write -s " + NOISE + " " + offset + " " + length;
    }

    /**
     * Data, zeroes (over data: the zero flag on an allocated cluster; over nothing: on an unallocated one),
     * discards and gaps, scaled to the cluster size so that every size sees partial clusters, runs across L2
     * tables (512-byte clusters: one table maps 32 KiB) and data right behind long holes.
     */
    @ParameterizedTest
    @ValueSource(ints = {512, 4 * KIB, 64 * KIB, 2 * MIB})
    void clusterSizes(int cluster) throws IOException {
        long size = 12L * MIB + 3 * SECTOR;
        Path img = qemu.create("c.qcow2", "cluster_size=" + cluster, Long.toString(size));
        qemu.io("c.qcow2",
                data(0, 100 * KIB),
                data(300 * KIB, 17 * KIB + 3),
                "write -z 64k 64k",
                data(MIB, 200 * KIB),
                "discard 1088k 64k",
                "write -z 2M " + (2 * cluster),
                data(3 * MIB + cluster / 2, 3L * cluster),
                "write -z " + (3 * MIB + cluster) + " " + cluster,
                data(3000 * KIB, KIB),
                data(5 * MIB - 1, 2),
                data(size - 700, 700));
        assertSeekMatchesQemu(img);
    }

    /** Subclusters: partly written, zeroed whole and in part, discarded, next to compressed clusters. */
    @ParameterizedTest
    @ValueSource(ints = {16 * KIB, 64 * KIB, 2 * MIB})
    void extendedL2(int cluster) throws IOException {
        int sub = cluster / Qcow2Format.SUBCLUSTERS_PER_CLUSTER;
        long size = 8L * cluster + 3 * SECTOR;
        Path img = qemu.create("x.qcow2", "extended_l2=on,cluster_size=" + cluster, Long.toString(size));
        qemu.io("x.qcow2",
                data(sub + 100, 300),
                data(3L * sub, 2L * sub + 1),
                "write -z " + (7L * sub) + " " + sub,
                "write -z " + (9L * sub + 10) + " " + (sub / 2),
                data(cluster + 5L * sub, sub),
                "write -z " + (cluster + 5L * sub) + " " + sub,
                "write -z " + (cluster + 20L * sub) + " " + (3L * sub),
                data(2L * cluster, cluster),
                "discard " + (2L * cluster + 4 * sub) + " " + (2L * sub),
                "write -c -s " + NOISE + " " + (4L * cluster) + " " + cluster,
                data(6L * cluster - sub / 3, sub),
                data(size - SECTOR, SECTOR));
        assertSeekMatchesQemu(img);
    }

    /** Subclusters that are unallocated fall through to the backing file; zeroed ones hide it. */
    @ParameterizedTest
    @ValueSource(ints = {16 * KIB, 64 * KIB})
    void extendedL2OverBacking(int cluster) throws IOException {
        int sub = cluster / Qcow2Format.SUBCLUSTERS_PER_CLUSTER;
        qemu.create("b.qcow2", "cluster_size=4k", "2M");
        qemu.io("b.qcow2", data(0, 4 * sub), data(cluster, 64 * KIB), "write -z " + (cluster + 8 * KIB) + " 8k");
        Path top = qemu.create("t.qcow2", "extended_l2=on,cluster_size=" + cluster, "2M",
                "-b", "b.qcow2", "-F", "qcow2");
        qemu.io("t.qcow2", data(sub, 100), "write -z " + (2L * sub) + " " + sub,
                "write -z " + (cluster + sub) + " " + (2L * sub), data(3L * cluster + 7, sub));
        assertSeekMatchesQemu(top);
    }

    /** qemu-img convert writes whole runs and leaves zero runs unallocated, at its own granularity. */
    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=512", "cluster_size=4k", "cluster_size=2M", "extended_l2=on,cluster_size=16k",
        "extended_l2=on,cluster_size=64k", "extended_l2=on,cluster_size=2M"})
    void convertedFromSparseRaw(String options) throws IOException {
        Path raw = sparseRaw("src.raw", 9L * MIB + SECTOR);
        qemu.run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", options, raw.toString(), "v.qcow2");
        assertSeekMatchesQemu(qemu.path("v.qcow2"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=512", "cluster_size=4k", "cluster_size=64k",
        "cluster_size=64k,compression_type=zstd", "cluster_size=2M"})
    void compressedClusters(String options) throws IOException {
        Path raw = sparseRaw("src.raw", 9L * MIB + SECTOR);
        qemu.run("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", options, raw.toString(), "z.qcow2");
        qemu.io("z.qcow2", "write -z 1M 4k", data(4 * MIB + 3, 5000));
        assertSeekMatchesQemu(qemu.path("z.qcow2"));
    }

    /** Zero clusters over a backing file's data read as zeros (v3); in v2 discarding shows the backing again. */
    @ParameterizedTest
    @ValueSource(strings = {"0.10", "1.1"})
    void zeroClustersOverBacking(String compat) throws IOException {
        qemu.create("zb.qcow2", "compat=" + compat, "4M");
        qemu.io("zb.qcow2", data(0, 4 * MIB));
        Path top = qemu.create("zt.qcow2", "compat=" + compat + ",cluster_size=4k", "4M",
                "-b", "zb.qcow2", "-F", "qcow2");
        qemu.io("zt.qcow2", data(8 * KIB, 8 * KIB), "write -z 64k 64k", "write -z 1M 1M", "discard 8k 4k",
                "write -z 3M 512");
        assertSeekMatchesQemu(top);
    }

    /**
     * Layers of every length relation: a raw base of 1 MiB + 12345 bytes (its tail up to the next sector
     * reads as zeros), a shorter 512-byte-cluster qcow2 with an odd size on it, a longer one above that and a
     * short top: each boundary is where the layer below ends, mid-cluster for the layers above.
     */
    @Test
    void backingChainWithOddSizedLayers() throws IOException {
        long base = MIB + 12345;
        qemu.rawFile("base.raw", base, 5);
        qemu.create("l1.qcow2", "cluster_size=512", Long.toString(MIB / 2 + 12345), "-b", "base.raw", "-F", "raw");
        qemu.io("l1.qcow2", data(100 * KIB, 3000), "write -z 200k 1k");
        qemu.create("l2.qcow2", "cluster_size=64k", Long.toString(3 * MIB + 12345), "-b", "l1.qcow2", "-F", "qcow2");
        qemu.io("l2.qcow2", data(2 * MIB + 1, 100), data(3 * MIB, 12345));
        Path top = qemu.create("l3.qcow2", "cluster_size=2M", Long.toString(2 * MIB + 12345),
                "-b", "l2.qcow2", "-F", "qcow2");
        qemu.io("l3.qcow2", data(7 * KIB, 3));
        assertSeekMatchesQemu(top);
        assertSeekMatchesQemu(qemu.path("l2.qcow2"));
        assertSeekMatchesQemu(qemu.path("l1.qcow2"));
    }

    /** The backing layer has data beyond the overlay's end: none of it may leak into the map. */
    @Test
    void backingLongerThanOverlay() throws IOException {
        qemu.create("lb.qcow2", "cluster_size=4k", "8M");
        qemu.io("lb.qcow2", data(0, 8 * KIB), data(MIB + 12345, 3 * MIB));
        Path top = qemu.create("lt.qcow2", "cluster_size=64k", Long.toString(MIB + 12345),
                "-b", "lb.qcow2", "-F", "qcow2");
        qemu.io("lt.qcow2", data(64 * KIB, 10));
        assertSeekMatchesQemu(top);
    }

    /** The overlay is longer than its backing: past the backing's end an unallocated cluster is a hole. */
    @Test
    void overlayLongerThanBacking() throws IOException {
        qemu.create("sb.qcow2", "cluster_size=512", Long.toString(MIB + 12345));
        qemu.io("sb.qcow2", data(0, MIB + 12345));
        Path top = qemu.create("st.qcow2", "cluster_size=64k", "6M", "-b", "sb.qcow2", "-F", "qcow2");
        qemu.io("st.qcow2", data(4 * MIB, 100));
        assertSeekMatchesQemu(top);

        qemu.rawFile("rb.raw", MIB + 12345, 3);
        Path overRaw = qemu.create("rt.qcow2", "cluster_size=4k", "3M", "-b", "rb.raw", "-F", "raw");
        qemu.io("rt.qcow2", data(2 * MIB, 100));
        assertSeekMatchesQemu(overRaw);
    }

    @ParameterizedTest
    @ValueSource(strings = {"on", "off"})
    void externalDataFile(String rawFlag) throws IOException {
        Path img = qemu.create("d.qcow2", "data_file=d.data,data_file_raw=" + rawFlag, "3M");
        qemu.io("d.qcow2", data(0, 64 * KIB), data(100 * KIB, 30 * KIB), "write -z 1M 128k", data(1500 * KIB, 4 * KIB));
        assertSeekMatchesQemu(img);
    }

    /** Preallocated clusters are allocated (data for us) but read as zeros from the host file's own holes. */
    @ParameterizedTest
    @ValueSource(strings = {"metadata", "falloc", "full"})
    void preallocation(String mode) throws IOException {
        Path img = qemu.create("p.qcow2", "cluster_size=4k,preallocation=" + mode, "3M");
        qemu.io("p.qcow2", data(100 * KIB, 10 * KIB + 1), "write -z 512k 128k", "write -z -u 1M 64k",
                "discard 2M 8k");
        assertSeekMatchesQemu(img);
    }

    /**
     * Random chains of up to three qcow2 layers, maybe over a raw base, every layer with its own cluster size,
     * version, L2 format and virtual size (any sector count, some shrunk or grown afterwards), and random
     * data, zero, discard and compressed writes at byte offsets. Fixed seeds keep failures reproducible.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
    void randomChains(int seed) throws IOException {
        Random r = new Random(seed);
        String below = null;
        String belowFormat = null;
        if (r.nextBoolean()) {
            below = "base.raw";
            belowFormat = "raw";
            qemu.rawFile(below, 1 + r.nextInt(RANDOM_MAX_SIZE), seed);
        }
        Path top = null;
        int layers = 1 + r.nextInt(RANDOM_MAX_LAYERS);
        for (int layer = 0; layer < layers; layer++) {
            int cluster = RANDOM_CLUSTERS[r.nextInt(RANDOM_CLUSTERS.length)];
            boolean extended = cluster >= 1 << Qcow2Format.MIN_EXTENDED_L2_CLUSTER_BITS && r.nextBoolean();
            boolean v2 = !extended && r.nextInt(4) == 0;
            String options = "cluster_size=" + cluster + (extended ? ",extended_l2=on" : "") + (v2 ? ",compat=0.10" : "");
            long size = Qcow2Format.alignUp(1 + r.nextInt(RANDOM_MAX_SIZE), SECTOR);
            String name = "r" + layer + ".qcow2";
            top = below == null ? qemu.create(name, options, Long.toString(size))
                    : qemu.create(name, options, Long.toString(size), "-b", below, "-F", belowFormat);
            List<String> writes = new ArrayList<>();
            for (int i = 0; i < RANDOM_WRITES; i++) {
                long offset = (long) (r.nextDouble() * size);
                long length = Math.min(size - offset, 1 + r.nextInt(r.nextBoolean() ? 2 * KIB : 300 * KIB));
                long clusterStart = offset / cluster * cluster;
                switch (r.nextInt(5)) {
                    case 0, 1 -> writes.add(data(offset, length));
                    case 2 -> writes.add("write -z " + offset + " " + length); // v2: qemu writes real zeros
                    case 3 -> writes.add("discard " + offset + " " + length);
                    default -> {
                        if (clusterStart + cluster <= size) {
                            writes.add("write -c -s " + NOISE + " " + clusterStart + " " + cluster);
                        }
                    }
                }
            }
            qemu.io(name, writes.toArray(String[]::new));
            if (r.nextInt(3) == 0) {
                qemu.run("qemu-img", "resize", "-q", "--shrink", name,
                        Long.toString(Qcow2Format.alignUp(1 + r.nextInt(RANDOM_MAX_SIZE), SECTOR)));
            }
            below = name;
            belowFormat = "qcow2";
        }
        assertSeekMatchesQemu(top);
    }

    /** A raw file of the given length: runs of 4 to 65 KiB, not 4 KiB aligned, each non-zero noise or zeros. */
    private Path sparseRaw(String name, long length) throws IOException {
        Path p = qemu.path(name);
        byte[] bytes = new byte[(int) length];
        for (int pos = 0; pos < bytes.length; ) {
            int run = (1 + random.nextInt(16)) * 4 * KIB + random.nextInt(KIB);
            int end = (int) Math.min(bytes.length, (long) pos + run);
            if (random.nextBoolean()) {
                for (int i = pos; i < end; i++) {
                    bytes[i] = (byte) (random.nextInt(255) + 1);
                }
            }
            pos = end;
        }
        Files.write(p, bytes);
        return p;
    }

    private void assertSeekMatchesQemu(Path image) throws IOException {
        Path reference = qemu.path(image.getFileName() + ".ref.raw");
        qemu.run("qemu-img", "convert", "-O", "raw", image.toString(), reference.toString());
        byte[] expected = Files.readAllBytes(reference);
        Files.delete(reference);
        String name = image.getFileName().toString();
        try (BlockBackend backend = QemuTool.open(image, Map.of())) {
            assertEquals(expected.length, backend.size(), name + ": virtual size");
            List<Extent> holes = SeekProbe.holes(backend);
            for (Extent hole : holes) {
                assertZeros(expected, hole.offset(), hole.end(), name + ": hole " + hole);
            }
            TreeSet<Long> probes = new TreeSet<>();
            for (Extent e : qemuMap(image)) {
                if (!e.data()) {
                    assertCovered(holes, e, name);
                }
                addAround(probes, e.offset(), expected.length);
                addAround(probes, e.end(), expected.length);
            }
            for (Extent hole : holes) {
                addAround(probes, hole.offset(), expected.length);
                addAround(probes, hole.end(), expected.length);
            }
            for (int i = 0; i < RANDOM_PROBES; i++) {
                probes.add((long) random.nextInt(expected.length));
            }
            for (long probe : probes) {
                assertSeeksFrom(backend, expected, probe, name);
            }
        }
    }

    /** SEEK_DATA from any offset skips only zeros; SEEK_HOLE lands on a hole that reads as zeros. */
    private static void assertSeeksFrom(BlockBackend backend, byte[] expected, long offset, String name)
            throws IOException {
        long size = expected.length;
        long data = SeekProbe.seekData(backend, offset);
        assertTrue(data == SeekProbe.NONE || data >= offset && data < size, name + ": SEEK_DATA(" + offset + ")");
        assertZeros(expected, offset, data == SeekProbe.NONE ? size : data,
                name + ": SEEK_DATA(" + offset + ") = " + data);
        long hole = SeekProbe.seekHole(backend, offset);
        assertTrue(hole >= offset && hole <= size, name + ": SEEK_HOLE(" + offset + ") = " + hole);
        if (hole < size) {
            long next = SeekProbe.seekData(backend, hole);
            assertZeros(expected, hole, next == SeekProbe.NONE ? size : next,
                    name + ": SEEK_HOLE(" + offset + ") = " + hole + ", then SEEK_DATA = " + next);
        }
    }

    private static void addAround(TreeSet<Long> probes, long offset, long size) {
        for (long p = offset - 1; p <= offset + 1; p++) {
            if (p >= 0 && p < size) {
                probes.add(p);
            }
        }
    }

    private static void assertZeros(byte[] bytes, long from, long to, String what) {
        for (long i = from; i < to; i++) {
            if (bytes[(int) i] != 0) {
                fail(what + " claims a hole, but byte " + i + " is data");
            }
        }
    }

    /**
     * What QEMU maps as "data": false (zero flags and bits, unallocated clusters without a backing layer,
     * past the end of a shorter layer or of a raw file) is known from metadata and file lengths, so our holes
     * must cover it. What only the host file system knows is not checked, and we report it as data, the
     * metadata-only answer: QEMU maps host holes under allocated clusters (preallocation=metadata) as
     * "zero": true, "data": true, and the raw layers here are written in full, so they have no host holes.
     */
    private static void assertCovered(List<Extent> holes, Extent zero, String name) {
        long pos = zero.offset();
        for (Extent h : holes) {
            if (h.end() <= pos) {
                continue;
            }
            if (h.offset() > pos) {
                break;
            }
            pos = h.end();
            if (pos >= zero.end()) {
                return;
            }
        }
        fail(name + ": qemu-img map says [" + zero.offset() + ", " + zero.end() + ") has no data, but offset "
                + pos + " is not in a reported hole");
    }

    /** qemu-img map --output=json as (start, length, data) entries, unmerged. */
    private List<Extent> qemuMap(Path image) throws IOException {
        String json = qemu.run("qemu-img", "map", "--output=json", image.toString());
        List<Extent> entries = new ArrayList<>();
        Matcher m = MAP_ENTRY.matcher(json);
        while (m.find()) {
            entries.add(new Extent(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)),
                    Boolean.parseBoolean(m.group(3))));
        }
        return entries;
    }
}
