package org.blockfuse.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.qcow2.Capability;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every image kind the backend supports, compared byte for byte and run for run with QEMU. */
class Qcow2ContentTest {

    /** A mix of data, zeroes, discards and untouched space that crosses cluster boundaries. */
    private static final String[] MIXED_WRITES = {
        "write -P 0x11 0 100k",
        "write -P 0x22 300k 17k",
        "write -z 64k 64k",
        "write -P 0x33 1M 200k",
        "discard 1088k 64k",
        "write -P 0x44 3000k 1k",
    };

    private QemuTool qemu;

    @BeforeEach
    void setUp() throws IOException {
        Capability.requireQemu();
        qemu = new QemuTool();
    }

    @AfterEach
    void tearDown() throws IOException {
        if (qemu != null) {
            qemu.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"0.10", "1.1"})
    void versionTwoAndThree(String compat) throws IOException {
        Path img = qemu.create("v.qcow2", "compat=" + compat, "4M");
        qemu.io("v.qcow2", MIXED_WRITES);
        qemu.assertMatchesQemu(img);
    }

    @ParameterizedTest
    @ValueSource(strings = {"512", "4k", "2M"})
    void clusterSizes(String clusterSize) throws IOException {
        Path img = qemu.create("c.qcow2", "cluster_size=" + clusterSize, "5M");
        qemu.io("c.qcow2", MIXED_WRITES);
        qemu.io("c.qcow2", "write -P 0x55 4606k 512");
        qemu.assertMatchesQemu(img);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 8, 64})
    void refcountWidths(int bits) throws IOException {
        Path img = qemu.create("r.qcow2", "refcount_bits=" + bits, "4M");
        qemu.io("r.qcow2", MIXED_WRITES);
        qemu.assertMatchesQemu(img);
    }

    @ParameterizedTest
    @ValueSource(strings = {"metadata", "falloc"})
    void preallocation(String mode) throws IOException {
        Path img = qemu.create("p.qcow2", "preallocation=" + mode, "2M");
        qemu.io("p.qcow2", "write -P 0x66 100k 10k", "write -z 512k 128k", "write -z -u 1M 64k");
        qemu.assertMatchesQemu(img);
    }

    @Test
    void virtualSizeNotMultipleOfCluster() throws IOException {
        Path img = qemu.create("odd.qcow2", "cluster_size=64k", "1000001");
        qemu.io("odd.qcow2", "write -P 0x77 960k 17408", "write -P 0x12 0 1k");
        qemu.assertMatchesQemu(img);
    }

    @ParameterizedTest
    @ValueSource(strings = {"zlib", "zstd"})
    void compressedClusters(String type) throws IOException {
        Path img = qemu.create("z.qcow2", "compression_type=" + type, "2M");
        qemu.io("z.qcow2", "write -P 0x21 0 64k", "write -c -P 0x31 64k 64k", "write -c -P 0x32 128k 64k",
                "write -P 0x41 300k 10k", "write -c -P 0x33 512k 64k");
        qemu.io("z.qcow2", "write -c 1M 64k");
        // The last compressed write lands at the end of the file, which then ends inside a sector.
        qemu.io("z.qcow2", "write -c -P 0x34 1984k 64k");
        assertTrue(Files.size(img) % Qcow2Format.COMPRESSED_SECTOR_SIZE != 0, "image should end mid-sector");
        qemu.assertMatchesQemu(img);
    }

    @Test
    void compressedNoiseInSmallClusters() throws IOException {
        Path raw = qemu.rawFile("noise.raw", 1 << 20, 9);
        qemu.run("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4k", raw.toString(), "n.qcow2");
        qemu.assertMatchesQemu(qemu.path("n.qcow2"));
        qemu.run("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=64k,compression_type=zstd",
                raw.toString(), "nz.qcow2");
        qemu.assertMatchesQemu(qemu.path("nz.qcow2"));
    }

    @Test
    void extendedL2WithSubclusters() throws IOException {
        Path img = qemu.create("x.qcow2", "extended_l2=on,cluster_size=64k", "2M");
        qemu.io("x.qcow2", "write -P 0x51 0 2k", "write -P 0x52 10k 5k", "write -z 32k 4k",
                "write -c -P 0x53 128k 64k", "write -P 0x54 200k 64k", "discard 210k 4k");
        qemu.assertMatchesQemu(img);
    }

    @Test
    void extendedL2OverBackingFile() throws IOException {
        qemu.create("xb.qcow2", null, "2M");
        qemu.io("xb.qcow2", "write -P 0x61 0 1M", "write -P 0x62 1M 512k");
        Path top = qemu.create("xt.qcow2", "extended_l2=on,cluster_size=64k,compression_type=zstd", "2M",
                "-b", "xb.qcow2", "-F", "qcow2");
        qemu.io("xt.qcow2", "write -P 0x71 2k 2k", "write -z 6k 2k", "write -c -P 0x72 192k 64k",
                "write -P 0x73 600k 3k", "discard 1M 64k");
        qemu.assertMatchesQemu(top);
    }

    @Test
    void backingChainMixingRawAndQcow2() throws IOException {
        qemu.rawFile("base.raw", 3 * 1024 * 1024 + 1000, 1); // not a multiple of 512: tail reads as zeros
        qemu.create("mid.qcow2", "compat=0.10,cluster_size=4k", "6M", "-b", "base.raw", "-F", "raw");
        qemu.io("mid.qcow2", "write -P 0x81 1M 8k", "write -P 0x82 5M 4k");
        qemu.create("short.qcow2", "cluster_size=128k", "2M", "-b", "mid.qcow2", "-F", "qcow2");
        qemu.io("short.qcow2", "write -P 0x83 0 64k");
        Path top = qemu.create("top.qcow2", "cluster_size=64k", "4M", "-b", "short.qcow2", "-F", "qcow2");
        qemu.io("top.qcow2", "write -P 0x84 64k 64k", "write -z 1M 4k", "write -P 0x85 3M 1k");
        qemu.assertMatchesQemu(top);
    }

    @Test
    void relativeBackingNamesResolveAgainstTheImageFolder() throws IOException {
        Files.createDirectories(qemu.path("sub"));
        qemu.create("sub/base.qcow2", null, "1M");
        qemu.io("sub/base.qcow2", "write -P 0x91 0 1M");
        Path top = qemu.create("sub/top.qcow2", null, "1M", "-b", "base.qcow2", "-F", "qcow2");
        qemu.io("sub/top.qcow2", "write -P 0x92 4k 4k");
        qemu.assertMatchesQemu(top);
    }

    @Test
    void backingFormatIsProbedWhenNotRecorded() throws IOException {
        qemu.create("pb.qcow2", null, "1M");
        qemu.io("pb.qcow2", "write -P 0xa1 0 512k");
        qemu.rawFile("pr.raw", 1 << 20, 3);
        Path topQ = qemu.create("ptq.qcow2", null, "1M", "-b", "pb.qcow2", "-F", "qcow2");
        Path topR = qemu.create("ptr.qcow2", null, "1M", "-b", "pr.raw", "-F", "raw");
        for (Path top : List.of(topQ, topR)) {
            qemu.io(top.getFileName().toString(), "write -P 0xa2 64k 4k");
            dropBackingFormatExtension(top);
            qemu.assertMatchesQemu(top);
        }
    }

    /** Renames the backing-format extension to an unknown type, which readers skip. */
    static void dropBackingFormatExtension(Path image) throws IOException {
        byte[] head = new byte[4096];
        try (var f = new java.io.RandomAccessFile(image.toFile(), "r")) {
            f.readFully(head);
        }
        ByteBuffer b = ByteBuffer.wrap(head);
        for (int pos = b.getInt(Qcow2Format.HDR_HEADER_LENGTH); pos + 8 < head.length; ) {
            int type = b.getInt(pos);
            if (type == Qcow2Format.EXT_BACKING_FORMAT) {
                QemuTool.patchInt(image, pos, 0x0badf00d);
                return;
            }
            if (type == 0) {
                break;
            }
            pos += 8 + (int) Qcow2Format.alignUp(b.getInt(pos + 4), 8);
        }
        throw new AssertionError("no backing format extension in " + image);
    }

    @ParameterizedTest
    @ValueSource(strings = {"on", "off"})
    void externalDataFile(String rawFlag) throws IOException {
        Path img = qemu.create("d.qcow2", "data_file=d.data,data_file_raw=" + rawFlag, "2M");
        qemu.io("d.qcow2", "write -P 0xb1 0 64k", "write -P 0xb2 100k 30k", "write -z 1M 128k",
                "write -P 0xb3 1500k 4k");
        qemu.assertMatchesQemu(img);
    }

    @Test
    void hugeSparseImage() throws IOException {
        long tib = 1L << 40;
        Path img = qemu.create("huge.qcow2", null, "8T");
        qemu.io("huge.qcow2", "write -P 0xc1 0 64k", "write -P 0xc2 " + (3 * tib + 4096) + " 4k",
                "write -P 0xc3 " + (8 * tib - 65536) + " 64k");
        Runtime rt = Runtime.getRuntime();
        try (BlockBackend backend = QemuTool.open(img, Map.of())) {
            assertEquals(8 * tib, backend.size());
            assertEquals(qemu.qemuMap(img), QemuTool.ourMap(backend));
            assertPattern(backend, 0, 65536, 0xc1);
            assertPattern(backend, 3 * tib + 4096, 4096, 0xc2);
            assertPattern(backend, 3 * tib, 4096, 0);
            assertPattern(backend, 5 * tib, 1 << 20, 0);
            assertPattern(backend, 8 * tib - 65536, 65536, 0xc3);
            assertTrue(rt.totalMemory() - rt.freeMemory() < 512L << 20, "memory must not grow with the virtual size");
        }
    }

    static void assertPattern(BlockBackend backend, long offset, int length, int pattern) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        backend.read(offset, buf);
        byte[] expected = new byte[length];
        java.util.Arrays.fill(expected, (byte) pattern);
        assertArrayEquals(expected, buf.array(), "content at " + offset);
    }

    @Test
    void internalSnapshotsByIdAndName() throws IOException {
        Path img = qemu.create("s.qcow2", null, "2M");
        qemu.io("s.qcow2", "write -P 0xd1 0 1M");
        qemu.run("qemu-img", "snapshot", "-c", "first", "s.qcow2");
        qemu.io("s.qcow2", "write -P 0xd2 64k 64k", "write -z 512k 64k", "write -c -P 0xd3 1M 64k");
        qemu.run("qemu-img", "snapshot", "-c", "second", "s.qcow2");
        qemu.io("s.qcow2", "write -P 0xd4 0 2M");
        qemu.assertMatchesQemu(img, Map.of("snapshot", "first"), List.of("-l", "snapshot.name=first"));
        qemu.assertMatchesQemu(img, Map.of("snapshot", "2"), List.of("-l", "snapshot.id=2"));
        qemu.assertMatchesQemu(img);
    }

    @Test
    void dirtyImageIsReadable() throws IOException {
        Path img = qemu.create("dirty.qcow2", "lazy_refcounts=on", "1M");
        qemu.io("dirty.qcow2", "write -P 0xe1 0 100k");
        long features = QemuTool.readLong(img, Qcow2Format.HDR_INCOMPATIBLE_FEATURES);
        QemuTool.patchLong(img, Qcow2Format.HDR_INCOMPATIBLE_FEATURES, features | Qcow2Format.INCOMPAT_DIRTY);
        qemu.assertMatchesQemu(img);
    }

    @Test
    void tinyL2CacheStillReadsCorrectly() throws IOException {
        // 512-byte clusters: one L2 table maps only 32 KiB, so 2 MiB needs 64 tables and the cache thrashes.
        Path img = qemu.create("t.qcow2", "cluster_size=512", "2M");
        qemu.io("t.qcow2", "write -P 0xf1 0 700k", "write -P 0xf2 1500k 300k");
        Path ref = qemu.path("t.raw");
        qemu.run("qemu-img", "convert", "-O", "raw", img.toString(), ref.toString());
        try (BlockBackend backend = QemuTool.open(img, Map.of("l2-cache-size", "512"))) {
            QemuTool.assertContent(backend, ref);
        }
    }

    @Test
    void concurrentReadersSeeTheSameBytes() throws Exception {
        Path img = qemu.create("cc.qcow2", "cluster_size=4k", "4M");
        qemu.io("cc.qcow2", "write -P 0x13 0 1M", "write -c -P 0x14 1M 64k", "write -P 0x15 2M 1M", "write -z 2500k 8k");
        Path ref = qemu.path("cc.raw");
        qemu.run("qemu-img", "convert", "-O", "raw", img.toString(), ref.toString());
        byte[] expected = Files.readAllBytes(ref);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try (BlockBackend backend = QemuTool.open(img, Map.of("l2-cache-size", "16k"))) {
            List<Future<?>> futures = new java.util.ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int seed = t;
                futures.add(pool.submit(() -> {
                    Random random = new Random(seed);
                    ByteBuffer buf = ByteBuffer.allocateDirect(70_000);
                    byte[] got = new byte[70_000];
                    for (int i = 0; i < 300; i++) {
                        int len = 1 + random.nextInt(got.length);
                        int off = random.nextInt(expected.length - len);
                        buf.clear().limit(len);
                        backend.read(off, buf);
                        buf.flip().get(got, 0, len);
                        assertEquals(-1, java.util.Arrays.mismatch(got, 0, len, expected, off, off + len),
                                "read at " + off);
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
