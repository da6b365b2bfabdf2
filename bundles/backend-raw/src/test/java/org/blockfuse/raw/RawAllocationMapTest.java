package org.blockfuse.raw;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackend.Extent;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The allocation map of a sparse file on the root disk: data and holes exactly where they are, the hole at
 * the end (SEEK_DATA answers ENXIO there), and offsets at and after the end.
 */
class RawAllocationMapTest {
    /** Data runs are multiples of this, so any block size up to 64 KiB gives the same map. */
    private static final int U = 64 << 10;
    private static final long SIZE = 32L * U; // 2 MiB

    @TempDir(factory = Host.RootDisk.class)
    Path dir;

    /** A SIZE-byte sparse file with data at [2U, 3U) and [8U, 11U); everything else (and the end) is hole. */
    private Path sparseImage() throws IOException {
        Path image = dir.resolve("sparse.raw");
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(Host.pattern(U, 1)), 2L * U);
            ch.write(ByteBuffer.wrap(Host.pattern(3 * U, 2)), 8L * U);
            ch.force(true);
        }
        setLength(image, SIZE);
        return image;
    }

    /** Grows (or creates) a file without writing: FileChannel.truncate only ever shrinks. */
    private static void setLength(Path file, long length) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(length);
        }
        assertEquals(length, java.nio.file.Files.size(file));
    }

    private static List<Extent> walk(BlockBackend b) throws IOException {
        List<Extent> map = new ArrayList<>();
        long off = 0;
        while (off < b.size()) {
            Extent e = b.extentAt(off);
            assertEquals(off, e.offset(), "an extent starts where it was asked for");
            assertTrue(e.length() > 0, "an extent below the end is not empty: " + e);
            assertTrue(e.end() <= b.size(), "an extent ends at or before the end: " + e);
            if (!map.isEmpty()) {
                assertNotEquals(map.get(map.size() - 1).data(), e.data(), "neighbouring extents differ: " + map + " " + e);
            }
            map.add(e);
            off = e.end();
        }
        return map;
    }

    @Test
    void dataAndHolesAreExactlyWhereTheFileHasThem() throws IOException {
        Path image = sparseImage();
        try (BlockBackend b = Host.open(image, false)) {
            Host.require(b.extentAt(0).length() != SIZE || !b.extentAt(0).data(),
                    "the filesystem under " + dir + " (" + Host.fsType(dir) + ") reports no holes");
            assertEquals(List.of(
                    new Extent(0, 2L * U, false),
                    new Extent(2L * U, U, true),
                    new Extent(3L * U, 5L * U, false),
                    new Extent(8L * U, 3L * U, true),
                    new Extent(11L * U, SIZE - 11L * U, false)), walk(b));
        }
    }

    @Test
    void anOffsetInsideARunGivesTheRestOfThatRun() throws IOException {
        try (BlockBackend b = Host.open(sparseImage(), false)) {
            assertEquals(new Extent(100, 2L * U - 100, false), b.extentAt(100));
            assertEquals(new Extent(2L * U + 1, U - 1, true), b.extentAt(2L * U + 1));
            assertEquals(new Extent(9L * U + 7, 2L * U - 7, true), b.extentAt(9L * U + 7));
            assertEquals(new Extent(3L * U - 1, 1, true), b.extentAt(3L * U - 1));
        }
    }

    @Test
    void theHoleAfterTheLastDataRunsToTheEnd() throws IOException {
        // SEEK_DATA from here has no data to find: the kernel answers ENXIO, which is a hole up to the end
        try (BlockBackend b = Host.open(sparseImage(), false)) {
            assertEquals(new Extent(11L * U, SIZE - 11L * U, false), b.extentAt(11L * U));
            assertEquals(new Extent(SIZE - 1, 1, false), b.extentAt(SIZE - 1));
            assertEquals(new Extent(20L * U + 5, SIZE - 20L * U - 5, false), b.extentAt(20L * U + 5));
        }
    }

    @Test
    void aFileWithNoDataAtAllIsOneHole() throws IOException {
        Path image = dir.resolve("empty.raw");
        setLength(image, SIZE);
        try (BlockBackend b = Host.open(image, false)) {
            assertEquals(List.of(new Extent(0, SIZE, false)), walk(b));
            assertEquals(0, b.allocatedBytes());
        }
    }

    @Test
    void aFullyWrittenFileIsOneDataRunEvenWithAnUnalignedEnd() throws IOException {
        Path image = dir.resolve("full.raw");
        int size = 3 * U + 123;
        java.nio.file.Files.write(image, Host.pattern(size, 3));
        try (BlockBackend b = Host.open(image, false)) {
            assertEquals(size, b.size());
            assertEquals(List.of(new Extent(0, size, true)), walk(b));
            assertEquals(new Extent(size - 1, 1, true), b.extentAt(size - 1));
        }
    }

    @Test
    void atAndAfterTheEndExtentsAreEmpty() throws IOException {
        try (BlockBackend b = Host.open(sparseImage(), false)) {
            assertEquals(new Extent(SIZE, 0, false), b.extentAt(SIZE));
            assertEquals(new Extent(SIZE + 4096, 0, false), b.extentAt(SIZE + 4096));
        }
        Path empty = dir.resolve("zero-length.raw");
        java.nio.file.Files.write(empty, new byte[0]);
        try (BlockBackend b = Host.open(empty, false)) {
            assertEquals(0, b.size());
            assertEquals(new Extent(0, 0, false), b.extentAt(0));
        }
    }

    @Test
    void holesReadAsZerosAndDataAsWritten() throws IOException {
        try (BlockBackend b = Host.open(sparseImage(), false)) {
            assertArrayEquals(Host.zeros(2 * U), Host.read(b, 0, 2 * U));
            assertArrayEquals(Host.pattern(U, 1), Host.read(b, 2L * U, U));
            assertArrayEquals(Host.pattern(3 * U, 2), Host.read(b, 8L * U, 3 * U));
            assertArrayEquals(Host.zeros(U), Host.read(b, SIZE - U, U));
        }
    }

    @Test
    void allocatedBytesFollowWhatTheFileOccupies() throws IOException {
        try (BlockBackend b = Host.open(sparseImage(), true)) {
            long before = b.allocatedBytes();
            assertTrue(before >= 4L * U, "the 4 data units are allocated: " + before);
            assertTrue(before < SIZE, "the holes are not: " + before);
            Host.write(b, 16L * U, Host.pattern(4 * U, 4));
            b.flush();
            long grown = b.allocatedBytes();
            assertTrue(grown >= before + 4L * U, "4 more units written: " + before + " -> " + grown);
            b.discard(8L * U, 3L * U);
            long punched = b.allocatedBytes();
            assertTrue(punched <= grown - 3L * U, "3 units punched: " + grown + " -> " + punched);
            assertEquals(new Extent(3L * U, 13L * U, false), b.extentAt(3L * U), "the punched range joined the holes");
        }
    }

    @Test
    void writesPastTheEndLeaveAHoleAndGrowTheMap() throws IOException {
        try (BlockBackend b = Host.open(sparseImage(), true)) {
            Host.write(b, SIZE + 4L * U, Host.pattern(U, 5));
            assertEquals(SIZE + 5L * U, b.size());
            assertEquals(new Extent(11L * U, SIZE - 7L * U, false), b.extentAt(11L * U));
            assertEquals(new Extent(SIZE + 4L * U, U, true), b.extentAt(SIZE + 4L * U));
            assertEquals(new Extent(SIZE + 5L * U, 0, false), b.extentAt(SIZE + 5L * U));
        }
    }

    @Test
    void aHostWithoutHolesReportsEverythingAsData() throws IOException {
        // ramfs answers SEEK_DATA/SEEK_HOLE generically: data from the offset, the only hole at the end
        try (RamfsMount ramfs = RamfsMount.at(dir)) {
            Path image = ramfs.dir().resolve("flat.raw");
            setLength(image, SIZE);
            try (BlockBackend b = Host.open(image, true)) {
                assertEquals(List.of(new Extent(0, SIZE, true)), walk(b));
                assertEquals(new Extent(SIZE - 3, 3, true), b.extentAt(SIZE - 3));
                assertEquals(new Extent(SIZE, 0, false), b.extentAt(SIZE));
                b.discard(0, U); // no punch there: zeros are written, the map stays all data
                assertEquals(List.of(new Extent(0, SIZE, true)), walk(b));
                assertArrayEquals(Host.zeros(U), Host.read(b, 0, U));
            }
        }
    }
}
