package org.blockfuse.raw;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * discard (punch hole) and writeZeroes (zero range): on the root disk, where the kernel does them, and on a
 * ramfs, which has no fallocate at all, so the backend's fallback of writing zeros runs for real.
 * Every range must read back as zeros, the bytes around it must be untouched and the size must not change.
 */
class RawDiscardZeroTest {
    private static final int SIZE = 4 << 20;
    /** Ranges: page-aligned, unaligned on both ends, longer than the fallback's 1 MiB chunk, up to the end. */
    private static final long[][] RANGES = {
            { 64 << 10, 64 << 10 },
            { 100, 5000 },
            { (1 << 20) + 3, (1 << 20) + (1 << 19) + 17 },
            { SIZE - 4097, 4097 },
    };

    @TempDir(factory = Host.RootDisk.class)
    Path dir;

    private interface Zeroer {
        void zero(BlockBackend b, long offset, long length) throws IOException;
    }

    private static void checkEveryRange(Path folder, Zeroer op) throws IOException {
        for (long[] r : RANGES) {
            Path image = folder.resolve("img-" + r[0] + ".raw");
            byte[] expected = Host.pattern(SIZE, (int) r[0]);
            Files.write(image, expected);
            try (BlockBackend b = Host.open(image, true)) {
                op.zero(b, r[0], r[1]);
                Arrays.fill(expected, (int) r[0], (int) (r[0] + r[1]), (byte) 0);
                assertEquals(SIZE, b.size(), "the size stays");
                assertArrayEquals(expected, Host.read(b, 0, SIZE), "range " + r[0] + "+" + r[1] + " through the backend");
            }
            assertEquals(SIZE, Files.size(image), "the file's size stays");
            assertArrayEquals(expected, Files.readAllBytes(image), "range " + r[0] + "+" + r[1] + " in the file");
            Files.delete(image);
        }
    }

    @Test
    void discardOnTheRootDisk() throws IOException {
        checkEveryRange(dir, BlockBackend::discard);
    }

    @Test
    void writeZeroesOnTheRootDisk() throws IOException {
        checkEveryRange(dir, BlockBackend::writeZeroes);
    }

    @Test
    void discardFallsBackToZerosWhereTheHostCannotPunchHoles() throws IOException {
        try (RamfsMount ramfs = RamfsMount.at(dir)) {
            checkEveryRange(ramfs.dir(), BlockBackend::discard);
        }
    }

    @Test
    void writeZeroesFallsBackToZerosWhereTheHostCannotZeroRanges() throws IOException {
        try (RamfsMount ramfs = RamfsMount.at(dir)) {
            checkEveryRange(ramfs.dir(), BlockBackend::writeZeroes);
        }
    }

    @Test
    void allocateIsOnlyAHintWhereTheHostHasNoFallocate() throws IOException {
        try (RamfsMount ramfs = RamfsMount.at(dir)) {
            Path image = ramfs.dir().resolve("a.raw");
            byte[] data = Host.pattern(1 << 20, 9);
            Files.write(image, data);
            try (BlockBackend b = Host.open(image, true)) {
                b.allocate(0, 1 << 20);
                assertArrayEquals(data, Host.read(b, 0, 1 << 20));
                assertEquals(1 << 20, b.size());
            }
        }
    }

    @Test
    void aPunchedRangeBecomesAHoleOnTheRootDisk() throws IOException {
        Path image = dir.resolve("hole.raw");
        Files.write(image, Host.pattern(SIZE, 7));
        try (BlockBackend b = Host.open(image, true)) {
            long before = b.allocatedBytes();
            b.discard(1 << 20, 1 << 20);
            assertEquals(new BlockBackend.Extent(1 << 20, 1 << 20, false), b.extentAt(1 << 20));
            assertEquals(new BlockBackend.Extent(2 << 20, 2 << 20, true), b.extentAt(2 << 20));
            assertTrue(b.allocatedBytes() <= before - (1 << 20), before + " -> " + b.allocatedBytes());
        }
    }

    @Test
    void aReadOnlyImageRefusesDiscardAndZeroesAndLeavesTheBytes() throws IOException {
        Path image = dir.resolve("ro.raw");
        byte[] data = Host.pattern(1 << 16, 8);
        Files.write(image, data);
        try (BlockBackend b = Host.open(image, false)) {
            assertFalse(b.writable());
            ImageException e = assertThrows(ImageException.class, () -> b.discard(0, 4096));
            assertEquals("image " + image + " is open read-only", e.getMessage());
            assertThrows(ImageException.class, () -> b.writeZeroes(0, 4096));
            assertThrows(ImageException.class, () -> b.allocate(0, 4096));
            assertThrows(ImageException.class, () -> b.resize(4096));
            assertThrows(ImageException.class, () -> Host.write(b, 0, new byte[16]));
        }
        assertArrayEquals(data, Files.readAllBytes(image));
    }
}
