package org.blockfuse.raw;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Map;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackend.Extent;
import org.blockfuse.api.ImageException;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.NativeException;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A block device (a loop device over a file in a temp folder, detached in finally): size from
 * BLKGETSIZE64, everything allocated, no resizing, and I/O, discard and zeroes at any alignment.
 */
class RawBlockDeviceTest {
    /** Not a multiple of 4096, so the device's end is not page-aligned. */
    private static final int SIZE = (3 << 20) + 512;

    @TempDir(factory = Host.RootDisk.class)
    Path dir;
    private Path backing;
    private byte[] data;

    @BeforeEach
    void backingFile() throws IOException {
        backing = dir.resolve("backing.raw");
        data = Host.pattern(SIZE, 1);
        Files.write(backing, data);
    }

    @Test
    void sizeComesFromTheDeviceAndEverythingIsAllocated() throws IOException {
        try (LoopDevice loop = LoopDevice.attach(backing); BlockBackend b = Host.open(loop.path(), false)) {
            assertEquals(SIZE, b.size(), "BLKGETSIZE64 (fstat says 0 for a device)");
            assertEquals(0, Libc.fstat(b.directFd()).size(), "fstat really says 0, so the size above is the ioctl's");
            assertEquals(SIZE, b.allocatedBytes());
            assertEquals(new Extent(0, SIZE, true), b.extentAt(0));
            assertEquals(new Extent(12345, SIZE - 12345, true), b.extentAt(12345));
            assertEquals(new Extent(SIZE, 0, false), b.extentAt(SIZE));
            assertFalse(b.writable());
            assertArrayEquals(data, Host.read(b, 0, SIZE));
        }
    }

    @Test
    void aBlockDeviceIsNeverResized() throws IOException {
        try (LoopDevice loop = LoopDevice.attach(backing); BlockBackend b = Host.open(loop.path(), true)) {
            for (long newSize : new long[] { SIZE / 2, SIZE * 2L, SIZE }) {
                ImageException e = assertThrows(ImageException.class, () -> b.resize(newSize));
                assertEquals("image " + loop.path() + " is a block device and cannot be resized", e.getMessage());
                assertEquals(SIZE, b.size());
            }
            b.allocate(0, SIZE); // allocated by nature: nothing to do, no error
        }
        assertEquals(SIZE, Files.size(backing), "the file behind the device keeps its size");
        assertArrayEquals(data, Files.readAllBytes(backing));
    }

    @Test
    void readsAcrossTheEndGiveZerosAndWritesPastItFail() throws IOException {
        try (LoopDevice loop = LoopDevice.attach(backing); BlockBackend b = Host.open(loop.path(), true)) {
            byte[] got = Host.read(b, SIZE - 1000, 4096);
            assertArrayEquals(Arrays.copyOfRange(data, SIZE - 1000, SIZE), Arrays.copyOf(got, 1000));
            assertArrayEquals(Host.zeros(3096), Arrays.copyOfRange(got, 1000, 4096));
            assertArrayEquals(Host.zeros(512), Host.read(b, SIZE + 4096, 512));

            NativeException e = assertThrows(NativeException.class, () -> Host.write(b, SIZE, new byte[512]));
            assertEquals(Errno.ENOSPC, e.errno(), "ENOSPC, like a full disk: " + e.getMessage());
            assertEquals(SIZE, b.size(), "a device does not grow");
        }
        assertEquals(SIZE, Files.size(backing));
    }

    @Test
    void writesReachTheDevice() throws IOException {
        byte[] w = Host.pattern(10_000, 2);
        try (LoopDevice loop = LoopDevice.attach(backing)) {
            try (BlockBackend b = Host.open(loop.path(), true)) {
                Host.write(b, 777, w);
                b.flush();
                assertArrayEquals(w, Host.read(b, 777, w.length));
            }
            System.arraycopy(w, 0, data, 777, w.length);
            try (FileChannel ch = FileChannel.open(loop.path(), StandardOpenOption.READ)) {
                ByteBuffer all = ByteBuffer.allocate(SIZE);
                while (all.hasRemaining() && ch.read(all) > 0) {
                    // read the whole device through a fresh descriptor
                }
                assertArrayEquals(data, all.array());
            }
        }
        assertArrayEquals(data, Files.readAllBytes(backing), "and the file behind it");
    }

    /** Block devices take fallocate only in whole logical blocks; other ranges must still read back as zeros. */
    @Test
    void discardAndZeroesWorkAtAnyAlignment() throws IOException {
        long[][] ranges = { { 4096, 8192 }, { 100, 5000 }, { 1000, 200 }, { 512, 512 }, { (1 << 20) + 7, 70_000 },
                { SIZE - 6000, 6000 } };
        try (LoopDevice loop = LoopDevice.attach(backing); BlockBackend b = Host.open(loop.path(), true)) {
            boolean discard = true;
            for (long[] r : ranges) {
                if (discard) {
                    b.discard(r[0], r[1]);
                } else {
                    b.writeZeroes(r[0], r[1]);
                }
                Arrays.fill(data, (int) r[0], (int) (r[0] + r[1]), (byte) 0);
                assertArrayEquals(data, Host.read(b, 0, SIZE),
                        (discard ? "discard " : "writeZeroes ") + r[0] + "+" + r[1]);
                discard = !discard;
            }
            for (long[] r : ranges) { // and the other way round
                Host.write(b, r[0], Host.pattern((int) r[1], (int) r[0]));
                if (discard) {
                    b.discard(r[0], r[1]);
                } else {
                    b.writeZeroes(r[0], r[1]);
                }
                assertArrayEquals(data, Host.read(b, 0, SIZE),
                        (discard ? "discard " : "writeZeroes ") + r[0] + "+" + r[1]);
                discard = !discard;
            }
            assertEquals(SIZE, b.size());
        }
    }

    @Test
    void cacheNoneOnADeviceServesAlignedAndUnalignedRequests() throws IOException {
        try (LoopDevice loop = LoopDevice.attach(backing);
                BlockBackend b = Host.open(loop.path(), true, Map.of("cache", "none"))) {
            assertNotEquals(0, Host.openFlags(b.directFd()) & Libc.O_DIRECT);
            // a device refuses unaligned O_DIRECT outright (EINVAL), so these prove the buffered route
            assertArrayEquals(Arrays.copyOfRange(data, 3, 3 + 5000), Host.read(b, 3, 5000));
            byte[] w = Host.pattern(700, 3);
            Host.write(b, 9000, w);
            System.arraycopy(w, 0, data, 9000, w.length);

            ByteBuffer aligned = Libc.allocateAligned(16384, 4096);
            b.read(8192, aligned);
            byte[] got = new byte[16384];
            aligned.flip().get(got);
            assertArrayEquals(Arrays.copyOfRange(data, 8192, 8192 + 16384), got, "direct read sees the buffered write");

            ByteBuffer tail = Libc.allocateAligned(8192, 4096);
            b.read(SIZE - 512 - 4096, tail); // aligned start, crosses the unaligned end
            byte[] t = new byte[8192];
            tail.flip().get(t);
            assertArrayEquals(Arrays.copyOfRange(data, SIZE - 4608, SIZE), Arrays.copyOf(t, 4608));
            assertArrayEquals(Host.zeros(8192 - 4608), Arrays.copyOfRange(t, 4608, 8192));
        }
    }
}
