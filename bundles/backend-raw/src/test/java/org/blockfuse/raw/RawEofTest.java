package org.blockfuse.raw;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.BlockBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reads at, across and past the end of the file, and writes at and past the end. */
class RawEofTest {
    private static final int SIZE = 10_000;

    @TempDir
    Path dir;

    private Path image(byte[] data) throws IOException {
        Path image = dir.resolve("eof.raw");
        Files.write(image, data);
        return image;
    }

    @Test
    void aReadAcrossTheEndGivesTheBytesThenZeros() throws IOException {
        byte[] data = Host.pattern(SIZE, 1);
        try (BlockBackend b = Host.open(image(data), false)) {
            byte[] got = Host.read(b, 8192, 8192);
            byte[] expected = new byte[8192];
            System.arraycopy(data, 8192, expected, 0, SIZE - 8192);
            assertArrayEquals(expected, got);
        }
    }

    @Test
    void aReadWhollyPastTheEndGivesZeros() throws IOException {
        try (BlockBackend b = Host.open(image(Host.pattern(SIZE, 2)), false)) {
            assertArrayEquals(Host.zeros(4096), Host.read(b, SIZE, 4096));
            assertArrayEquals(Host.zeros(777), Host.read(b, 1L << 40, 777));
        }
    }

    @Test
    void theZeroTailLandsAfterTheBufferPositionNotAtItsStart() throws IOException {
        byte[] data = Host.pattern(SIZE, 3);
        try (BlockBackend b = Host.open(image(data), false)) {
            ByteBuffer dst = ByteBuffer.allocateDirect(64);
            for (int i = 0; i < 64; i++) {
                dst.put(i, (byte) 0x55);
            }
            dst.position(5).limit(60); // 55 bytes at SIZE - 20: 20 of data, 35 of zeros
            b.read(SIZE - 20, dst);
            assertEquals(60, dst.position());
            dst.limit(64);
            for (int i = 0; i < 5; i++) {
                assertEquals(0x55, dst.get(i), "byte " + i + " before the position is not touched");
            }
            for (int i = 0; i < 20; i++) {
                assertEquals(data[SIZE - 20 + i], dst.get(5 + i), "data byte " + i);
            }
            for (int i = 25; i < 60; i++) {
                assertEquals(0, dst.get(i), "byte " + i + " past the end reads zero");
            }
            for (int i = 60; i < 64; i++) {
                assertEquals(0x55, dst.get(i), "byte " + i + " after the limit is not touched");
            }
        }
    }

    @Test
    void anEmptyReadAtTheEndIsFine() throws IOException {
        try (BlockBackend b = Host.open(image(Host.pattern(SIZE, 4)), false)) {
            ByteBuffer dst = ByteBuffer.allocateDirect(8).limit(0);
            b.read(SIZE, dst);
            assertEquals(0, dst.position());
        }
    }

    @Test
    void writesAtAndAcrossTheEndGrowTheImage() throws IOException {
        byte[] data = Host.pattern(SIZE, 5);
        Path image = image(data);
        byte[] atEnd = Host.pattern(100, 6);
        byte[] across = Host.pattern(300, 7);
        try (BlockBackend b = Host.open(image, true)) {
            Host.write(b, SIZE, atEnd);
            assertEquals(SIZE + 100, b.size());
            Host.write(b, SIZE + 50, across);
            assertEquals(SIZE + 350, b.size());
            Host.write(b, 0, new byte[] { 9 }); // inside: the size stays
            assertEquals(SIZE + 350, b.size());
        }
        byte[] expected = Arrays.copyOf(data, SIZE + 350);
        expected[0] = 9;
        System.arraycopy(atEnd, 0, expected, SIZE, 100);
        System.arraycopy(across, 0, expected, SIZE + 50, 300);
        assertArrayEquals(expected, Files.readAllBytes(image));
    }

    @Test
    void aWriteBeyondTheEndLeavesZerosInTheGap() throws IOException {
        byte[] data = Host.pattern(SIZE, 8);
        Path image = image(data);
        try (BlockBackend b = Host.open(image, true)) {
            Host.write(b, SIZE + 5000, new byte[] { 1, 2, 3 });
            assertEquals(SIZE + 5003, b.size());
            assertArrayEquals(Host.zeros(5000), Host.read(b, SIZE, 5000));
        }
        assertEquals(SIZE + 5003, Files.size(image));
    }

    @Test
    void concurrentGrowingWritesLeaveTheLargestEnd() throws Exception {
        Path image = image(new byte[0]);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try (BlockBackend b = Host.open(image, true)) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int id = t;
                done.add(pool.submit(() -> {
                    for (int i = 0; i < 200; i++) {
                        Host.write(b, (long) (i * 4 + id) * 512, Host.pattern(512, i * 4 + id));
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get(60, TimeUnit.SECONDS);
            }
            assertEquals(800 * 512, b.size());
            assertEquals(Files.size(image), b.size());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void resizeShrinksAndGrowsARegularFile() throws IOException {
        byte[] data = Host.pattern(SIZE, 9);
        Path image = image(data);
        try (BlockBackend b = Host.open(image, true)) {
            b.resize(4096);
            assertEquals(4096, b.size());
            assertEquals(4096, Files.size(image));
            b.resize(SIZE);
            assertEquals(SIZE, b.size());
            byte[] expected = new byte[SIZE];
            System.arraycopy(data, 0, expected, 0, 4096);
            assertArrayEquals(expected, Host.read(b, 0, SIZE), "what was cut off comes back as zeros");
        }
    }
}
