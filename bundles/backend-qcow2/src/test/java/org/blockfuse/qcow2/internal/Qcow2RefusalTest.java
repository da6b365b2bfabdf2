package org.blockfuse.qcow2.internal;

import static org.blockfuse.qcow2.internal.Qcow2Format.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;
import org.blockfuse.qcow2.Capability;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Damaged and unsupported images: refused at open with a named reason, or EIO for the affected reads only. */
class Qcow2RefusalTest {

    private QemuTool qemu;
    private Path img;

    @BeforeEach
    void setUp() throws IOException {
        Capability.requireQemu();
        qemu = new QemuTool();
        img = qemu.create("a.qcow2", null, "1M");
        qemu.io("a.qcow2", "write -P 0x11 0 64k", "write -P 0x12 256k 64k");
    }

    @AfterEach
    void tearDown() throws IOException {
        if (qemu != null) {
            qemu.close();
        }
    }

    private void assertRefused(Path image, String reason) {
        assertRefused(image, Map.of(), reason);
    }

    private void assertRefused(Path image, Map<String, String> options, String reason) {
        ImageException e = assertThrows(ImageException.class, () -> QemuTool.open(image, options).close());
        assertTrue(e.getMessage().toLowerCase(Locale.ROOT).contains(reason.toLowerCase(Locale.ROOT)),
                "expected '" + reason + "' in: " + e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one-line message");
    }

    @Test
    void writableIsRefused() {
        ImageException e = assertThrows(ImageException.class,
                () -> new Qcow2BackendFactory().open(new BackendRequest(img, true, Map.of())));
        assertEquals("qcow2 images are exported read-only; drop --writable", e.getMessage());
    }

    @Test
    void writesAreRefused() throws IOException {
        try (BlockBackend b = QemuTool.open(img, Map.of())) {
            assertThrows(ImageException.class, () -> b.write(0, ByteBuffer.allocate(1)));
            assertThrows(ImageException.class, () -> b.discard(0, 512));
            assertThrows(ImageException.class, () -> b.writeZeroes(0, 512));
            assertThrows(ImageException.class, () -> b.allocate(0, 512));
            assertThrows(ImageException.class, () -> b.resize(1 << 21));
            b.flush();
            assertTrue(!b.writable());
        }
    }

    @Test
    void badMagic() throws IOException {
        QemuTool.patchInt(img, HDR_MAGIC, 0x12345678);
        assertRefused(img, "bad magic");
    }

    @Test
    void unsupportedVersion() throws IOException {
        QemuTool.patchInt(img, HDR_VERSION, 4);
        assertRefused(img, "unsupported qcow2 version 4");
    }

    @Test
    void clusterBitsOutOfRange() throws IOException {
        QemuTool.patchInt(img, HDR_CLUSTER_BITS, 8);
        assertRefused(img, "cluster size 2^8");
        QemuTool.patchInt(img, HDR_CLUSTER_BITS, 40);
        assertRefused(img, "cluster size 2^40");
    }

    @Test
    void truncatedHeader() throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(50);
        }
        assertRefused(img, "truncated header");
    }

    @Test
    void headerLengthChecked() throws IOException {
        QemuTool.patchInt(img, HDR_HEADER_LENGTH, 96);
        assertRefused(img, "header too short");
        QemuTool.patchInt(img, HDR_HEADER_LENGTH, 1 << 17);
        assertRefused(img, "header exceeds cluster size");
    }

    @Test
    void extensionBeyondHeaderCluster() throws IOException {
        int headerLength = (int) QemuTool.readLong(img, HDR_HEADER_LENGTH - 4);
        QemuTool.patchInt(img, headerLength, 0x11223344);
        QemuTool.patchInt(img, headerLength + 4, 1 << 20);
        assertRefused(img, "header extension too large");
    }

    @Test
    void encryptedImagesAreRefused() throws IOException {
        QemuTool.patchInt(img, HDR_CRYPT_METHOD, CRYPT_AES);
        assertRefused(img, "encrypted (AES)");
        QemuTool.patchInt(img, HDR_CRYPT_METHOD, 7);
        assertRefused(img, "unsupported encryption method 7");
        // qemu-img's PBKDF calibration fails at random on this VM ("Unable to get accurate CPU usage":
        // coarse thread CPU time); the image itself is fine, so try again
        for (int attempt = 1;; attempt++) {
            try {
                qemu.run("qemu-img", "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=secret",
                        "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", "luks.qcow2", "1M");
                break;
            } catch (IOException e) {
                if (attempt == 10 || !String.valueOf(e.getMessage()).contains("accurate CPU usage")) {
                    throw e;
                }
            }
        }
        assertRefused(qemu.path("luks.qcow2"), "encrypted (LUKS)");
    }

    @Test
    void unknownIncompatibleBitIsNamed() throws IOException {
        QemuTool.patchLong(img, HDR_INCOMPATIBLE_FEATURES, 1L << 10);
        assertRefused(img, "bit 10");
        // Give bit 10 a name in the feature name table: reuse the entry that names incompatible bit 4.
        long entry = featureTableEntry(img, FEATURE_TYPE_INCOMPATIBLE, 4);
        QemuTool.patch(img, entry + 1, new byte[] {10});
        assertRefused(img, "extended l2 entries (bit 10)");
    }

    private static long featureTableEntry(Path image, int type, int bit) throws IOException {
        byte[] head = Files.readAllBytes(image);
        ByteBuffer b = ByteBuffer.wrap(head);
        for (int pos = b.getInt(HDR_HEADER_LENGTH); b.getInt(pos) != EXT_END; ) {
            int len = b.getInt(pos + 4);
            if (b.getInt(pos) == EXT_FEATURE_NAMES) {
                for (int e = pos + 8; e < pos + 8 + len; e += FEATURE_NAME_ENTRY) {
                    if (head[e] == type && head[e + 1] == bit) {
                        return e;
                    }
                }
            }
            pos += 8 + (int) alignUp(len, 8);
        }
        throw new AssertionError("feature not in table");
    }

    @Test
    void corruptBitNeedsAllowCorrupt() throws IOException {
        QemuTool.patchLong(img, HDR_INCOMPATIBLE_FEATURES, INCOMPAT_CORRUPT);
        assertRefused(img, "marked corrupt");
        qemu.assertMatchesQemu(img, Map.of("allow-corrupt", "true"), java.util.List.of("-U"));
    }

    @Test
    void l1TableTooLargeOrBeyondEof() throws IOException {
        QemuTool.patchInt(img, HDR_L1_SIZE, 1 << 24);
        assertRefused(img, "L1 table too large");
        QemuTool.patchInt(img, HDR_L1_SIZE, 1 << 20);
        assertRefused(img, "L1 table lies beyond the end of the file");
        QemuTool.patchInt(img, HDR_L1_SIZE, 1);
        QemuTool.patchLong(img, HDR_L1_TABLE_OFFSET, 1L << 40);
        assertRefused(img, "L1 table lies beyond the end of the file");
        QemuTool.patchLong(img, HDR_L1_TABLE_OFFSET, 12345);
        assertRefused(img, "L1 table offset 12345 is invalid");
    }

    @Test
    void l1TableTooSmall() throws IOException {
        QemuTool.patchLong(img, HDR_SIZE, 1L << 40);
        assertRefused(img, "L1 table is too small");
    }

    @Test
    void backingChainProblems() throws IOException {
        qemu.create("self.qcow2", null, "1M", "-u", "-b", "./self.qcow2", "-F", "qcow2");
        assertRefused(qemu.path("self.qcow2"), "backing chain loop");

        qemu.create("loop1.qcow2", null, "1M", "-u", "-b", "loop2.qcow2", "-F", "qcow2");
        qemu.create("loop2.qcow2", null, "1M", "-u", "-b", "loop1.qcow2", "-F", "qcow2");
        assertRefused(qemu.path("loop1.qcow2"), "backing chain loop");

        qemu.create("orphan.qcow2", null, "1M", "-u", "-b", "missing.qcow2", "-F", "qcow2");
        assertRefused(qemu.path("orphan.qcow2"), "backing file 'missing.qcow2' not found");

        qemu.create("l0.qcow2", null, "1M");
        for (int i = 1; i <= 4; i++) {
            qemu.create("l" + i + ".qcow2", null, "1M", "-b", "l" + (i - 1) + ".qcow2", "-F", "qcow2");
        }
        assertRefused(qemu.path("l4.qcow2"), Map.of("max-chain-depth", "3"), "deeper than 3");
        QemuTool.open(qemu.path("l4.qcow2"), Map.of("max-chain-depth", "4")).close();

        Path top = qemu.path("l1.qcow2");
        QemuTool.patchInt(top, HDR_BACKING_FILE_SIZE, 2000);
        assertRefused(top, "backing file name too long");

        qemu.create("vmdk.qcow2", null, "1M", "-u", "-b", "l0.qcow2", "-F", "vmdk");
        assertRefused(qemu.path("vmdk.qcow2"), "format 'vmdk' is not supported");
    }

    @Test
    void hugeVirtualSizeDoesNotOverflowTheL1Check() throws IOException {
        // Found by the image fuzzer: the round-up in the "L1 table is too small" check overflowed for sizes
        // near 2^63, the image opened with a disk of 8 EiB, and SEEK_DATA over it never returned.
        QemuTool.patchLong(img, HDR_SIZE, Long.MAX_VALUE);
        assertRefused(img, "L1 table is too small");
        QemuTool.patchLong(img, HDR_SIZE, Long.MAX_VALUE - (1L << 20));
        assertRefused(img, "L1 table is too small");
    }

    /** Takes snapshot s1 of image; returns where its disk size lies (extra data of the first table entry). */
    private long snapshotDiskSizeField(Path image) throws IOException {
        qemu.run("qemu-img", "snapshot", "-c", "s1", image.toString());
        long entry = QemuTool.readLong(image, HDR_SNAPSHOTS_OFFSET);
        return entry + SN_FIXED_LENGTH + SN_EXTRA_DISK_SIZE;
    }

    @Test
    void snapshotWithNegativeDiskSizeIsRefused() throws IOException {
        // Found by the image fuzzer: a snapshot's 64-bit disk size was taken as is, so the backend reported
        // a negative size (and extentAt threw IllegalArgumentException at offset 0).
        QemuTool.patchLong(img, snapshotDiskSizeField(img), 0xb9a5149061ca50adL);
        assertRefused(img, Map.of("snapshot", "s1"), "snapshot 's1' has a disk size of");
        assertRefused(img, Map.of("snapshot", "s1"), "which is too large");
    }

    @Test
    void snapshotLargerThanItsL1TableIsMappedInOneStep() throws IOException {
        // Found by the image fuzzer: past the end of a snapshot's L1 table the extent scan advanced one L2
        // range (here 512 MiB) per step, so SEEK_DATA over a snapshot claiming 4 EiB did not return.
        QemuTool.patchLong(img, snapshotDiskSizeField(img), 1L << 62);
        try (BlockBackend b = QemuTool.open(img, Map.of("snapshot", "s1"))) {
            assertEquals(1L << 62, b.size());
            List<BlockBackend.Extent> map = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> QemuTool.ourMap(b));
            assertEquals(new BlockBackend.Extent(320 << 10, (1L << 62) - (320 << 10), false), map.get(map.size() - 1));
            Qcow2ContentTest.assertPattern(b, 0, 65536, 0x11);
            Qcow2ContentTest.assertPattern(b, (1L << 62) - 4096, 4096, 0);
        }
    }

    @Test
    void damagedCompressedClusterReadInPiecesAllocatesLittle() throws IOException {
        // Found by the image fuzzer: each small read of a marked but damaged compressed cluster allocated a
        // whole cluster before failing, 1 GiB of garbage for reading one 2 MiB cluster in 4 KiB pieces.
        byte[] text = new byte[2 << 20];
        Random random = new Random(3);
        for (int i = 0; i < text.length; i++) {
            text[i] = (byte) "abcd".charAt(random.nextInt(4));
        }
        Files.write(qemu.path("text.bin"), text);
        Path c = qemu.create("big.qcow2", "cluster_size=2M", "2M");
        qemu.io("big.qcow2", "write -c -s text.bin 0 2M");
        // Cut the stream in half (its sector count): prefixes still decode, the whole cluster cannot.
        long l2 = firstL2(c);
        long descriptor = QemuTool.readLong(c, l2);
        int offsetBits = COMPRESSED_FIELD_TOP - (21 - COMPRESSED_FIELD_BIAS);
        long sectorMask = (1L << (21 - COMPRESSED_FIELD_BIAS)) - 1;
        long sectors = (descriptor >>> offsetBits) & sectorMask;
        QemuTool.patchLong(c, l2, descriptor & ~(sectorMask << offsetBits) | (sectors / 2) << offsetBits);
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (BlockBackend b = QemuTool.open(c, Map.of())) {
            ByteBuffer buf = ByteBuffer.allocate(4096);
            b.read(0, buf.clear()); // warm up: scratch buffers, first (prefix) decode
            long before = threads.getCurrentThreadAllocatedBytes();
            int failed = 0;
            for (long pos = 4096; pos < 2 << 20; pos += 4096) {
                try {
                    b.read(pos, buf.clear());
                } catch (IOException e) {
                    assertTrue(e.getMessage().contains("compressed cluster"), e.getMessage());
                    failed++;
                }
            }
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            assertTrue(failed > 0, "the damage must show");
            assertTrue(allocated < 64L << 20, "allocated " + (allocated >> 20) + " MiB for " + failed
                    + " failed reads");
        }
    }

    @Test
    void namesFromTheImageAreEscapedInMessages() throws IOException {
        // Found by the image fuzzer: a backing name taken from the header bytes (backing_file_offset moved
        // to 16) reached the refusal verbatim, newline and all (a name can hold terminal escapes as well),
        // and a data file name extension made 1 KiB long showed as 4 KiB of \x00 escapes.
        qemu.create("evil.qcow2", null, "1M", "-u", "-b", "two\nlines\u001b[31m.qcow2", "-F", "qcow2");
        ImageException e = assertThrows(ImageException.class, () -> QemuTool.open(qemu.path("evil.qcow2"), Map.of()));
        assertTrue(e.getMessage().contains("backing file 'two\\x0alines\\x1b[31m.qcow2' not found"), e.getMessage());
        QemuTool.patchLong(img, HDR_BACKING_FILE_OFFSET, 16);
        QemuTool.patchInt(img, HDR_BACKING_FILE_SIZE, 40);
        e = assertThrows(ImageException.class, () -> QemuTool.open(img, Map.of()));
        assertTrue(e.getMessage().chars().noneMatch(Character::isISOControl), e.getMessage());
        QemuTool.patchInt(img, HDR_BACKING_FILE_SIZE, MAX_BACKING_NAME_LENGTH);
        e = assertThrows(ImageException.class, () -> QemuTool.open(img, Map.of()));
        assertTrue(e.getMessage().contains("...(1023 characters)") && e.getMessage().length() < 3000, e.getMessage());
    }

    @Test
    void unknownSnapshotIsRefused() {
        assertRefused(img, Map.of("snapshot", "nope"), "no snapshot with id or name 'nope'");
    }

    @Test
    void badOptionValues() {
        assertRefused(img, Map.of("l2-cache-size", "lots"), "l2-cache-size");
        assertRefused(img, Map.of("max-chain-depth", "-1"), "max-chain-depth");
    }

    /** Offset of the first L2 table, from L1 entry 0. */
    private static long firstL2(Path image) throws IOException {
        long l1 = QemuTool.readLong(image, HDR_L1_TABLE_OFFSET);
        return QemuTool.readLong(image, l1) & OFFSET_MASK;
    }

    @Test
    void dataClusterBeyondEofFailsOnlyThatRead() throws IOException {
        long l2 = firstL2(img);
        QemuTool.patchLong(img, l2, OFLAG_COPIED | (1L << 40));
        assertOnlyFirstClusterFails(img, "beyond end of file");
    }

    @Test
    void misalignedDataClusterFailsOnlyThatRead() throws IOException {
        long l2 = firstL2(img);
        long entry = QemuTool.readLong(img, l2);
        QemuTool.patchLong(img, l2, entry + 512);
        assertOnlyFirstClusterFails(img, "unaligned");
    }

    @Test
    void misalignedOrMissingL2TableFailsReads() throws IOException {
        long l1 = QemuTool.readLong(img, HDR_L1_TABLE_OFFSET);
        long entry = QemuTool.readLong(img, l1);
        QemuTool.patchLong(img, l1, entry + 512);
        try (BlockBackend b = QemuTool.open(img, Map.of())) {
            IOException e = assertThrows(IOException.class, () -> b.read(0, ByteBuffer.allocate(512)));
            assertTrue(e.getMessage().contains("L2 table offset unaligned"), e.getMessage());
        }
        QemuTool.patchLong(img, l1, 1L << 40);
        try (BlockBackend b = QemuTool.open(img, Map.of())) {
            IOException e = assertThrows(IOException.class, () -> b.read(0, ByteBuffer.allocate(512)));
            assertTrue(e.getMessage().contains("L2 table beyond end of file"), e.getMessage());
        }
    }

    @Test
    void corruptCompressedDataFailsOnlyThatRead() throws IOException {
        Path c = qemu.create("c.qcow2", null, "1M");
        qemu.io("c.qcow2", "write -c -P 0x21 0 64k", "write -P 0x12 256k 64k");
        long descriptor = QemuTool.readLong(c, firstL2(c));
        int offsetBits = COMPRESSED_FIELD_TOP - (16 - COMPRESSED_FIELD_BIAS);
        long host = descriptor & ((1L << offsetBits) - 1);
        byte[] garbage = new byte[64];
        java.util.Arrays.fill(garbage, (byte) 0xff);
        QemuTool.patch(c, host, garbage);
        assertOnlyFirstClusterFails(c, "compressed cluster");
    }

    @Test
    void zeroFlagInVersionTwoImageFailsTheRead() throws IOException {
        Path v2 = qemu.create("v2.qcow2", "compat=0.10", "1M");
        qemu.io("v2.qcow2", "write -P 0x11 0 64k", "write -P 0x12 256k 64k");
        long l2 = firstL2(v2);
        QemuTool.patchLong(v2, l2, QemuTool.readLong(v2, l2) | OFLAG_ZERO);
        assertOnlyFirstClusterFails(v2, "zero cluster entry");
    }

    private static void assertOnlyFirstClusterFails(Path image, String reason) throws IOException {
        try (BlockBackend b = QemuTool.open(image, Map.of())) {
            for (int attempt = 0; attempt < 2; attempt++) { // logged once, failing every time
                IOException e = assertThrows(IOException.class, () -> b.read(0, ByteBuffer.allocate(4096)));
                assertTrue(e.getMessage().contains(reason), e.getMessage());
                assertTrue(e.getMessage().contains("guest offset 0"), e.getMessage());
            }
            ByteBuffer other = ByteBuffer.allocate(65536);
            b.read(256 * 1024, other);
            byte[] expected = new byte[65536];
            java.util.Arrays.fill(expected, (byte) 0x12);
            assertArrayEquals(expected, other.array());
        }
    }

    @Test
    void dataFileRawWithBackingIsRefused() throws IOException {
        qemu.create("d.qcow2", "data_file=d.data,data_file_raw=on", "1M");
        qemu.create("db.qcow2", null, "1M");
        Path d = qemu.path("d.qcow2");
        // Point the header at a backing name placed near the end of cluster 0.
        byte[] name = "db.qcow2".getBytes(StandardCharsets.US_ASCII);
        long at = 65536 - 512;
        QemuTool.patch(d, at, name);
        QemuTool.patchLong(d, HDR_BACKING_FILE_OFFSET, at);
        QemuTool.patchInt(d, HDR_BACKING_FILE_SIZE, name.length);
        assertRefused(d, "raw external data file cannot be combined with a backing file");
    }
}
