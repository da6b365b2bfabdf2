package org.blockfuse.raw;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;
import org.blockfuse.nativeio.Libc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * cache=none: the image gets a second, O_DIRECT descriptor; requests whose buffer address, offset and
 * length are all 4096-aligned go through it, every other request through the buffered one, and both give
 * the same bytes. Runs on the root disk (ext4 here), which supports O_DIRECT; on a ramfs, which does not,
 * cache=none is refused in one line.
 */
class RawDirectIoTest {
    private static final int A = 4096;
    private static final Map<String, String> NONE = Map.of("cache", "none");

    @TempDir(factory = Host.RootDisk.class)
    Path dir;

    private Path image(byte[] data) throws IOException {
        Path image = dir.resolve("direct.raw");
        Files.write(image, data);
        return image;
    }

    @Test
    void cacheNoneHandsTransportsAnODirectDescriptor() throws IOException {
        try (BlockBackend b = Host.open(image(Host.pattern(16 * A, 1)), true, NONE)) {
            assertEquals(A, b.directAlignment());
            assertNotEquals(0, Host.openFlags(b.directFd()) & Libc.O_DIRECT, "directFd() is opened O_DIRECT");
            int buffered = ((RawBackend) b).fdFor(1, 0, A);
            assertNotEquals(b.directFd(), buffered);
            assertEquals(0, Host.openFlags(buffered) & Libc.O_DIRECT, "the other descriptor is buffered");
            assertEquals(Libc.O_RDWR, Host.openFlags(b.directFd()) & 3);
        }
    }

    @Test
    void onlyFullyAlignedRequestsUseTheDirectDescriptor() throws IOException {
        try (BlockBackend b = Host.open(image(Host.pattern(16 * A, 2)), false, NONE)) {
            RawBackend raw = (RawBackend) b;
            int direct = b.directFd();
            int buffered = raw.fdFor(1, 0, A);
            assertEquals(Libc.O_RDONLY, Host.openFlags(direct) & 3, "a read-only request opens both read-only");
            assertEquals(direct, raw.fdFor(0, 0, A));
            assertEquals(direct, raw.fdFor(8 * A, 3L * A, 2 * A));
            assertEquals(buffered, raw.fdFor(A + 512, 0, A), "unaligned buffer address");
            assertEquals(buffered, raw.fdFor(0, 512, A), "unaligned offset");
            assertEquals(buffered, raw.fdFor(0, 0, A + 1), "unaligned length");
            assertEquals(buffered, raw.fdFor(0, 0, 100), "short length");
        }
    }

    @Test
    void cacheWritebackHasOnlyTheBufferedDescriptor() throws IOException {
        try (BlockBackend b = Host.open(image(Host.pattern(4 * A, 3)), true, Map.of("cache", "writeback"))) {
            assertEquals(1, b.directAlignment());
            assertEquals(0, Host.openFlags(b.directFd()) & Libc.O_DIRECT);
            assertEquals(b.directFd(), ((RawBackend) b).fdFor(0, 0, A));
        }
    }

    @Test
    void alignedAndUnalignedRequestsSeeEachOthersBytes() throws IOException {
        byte[] expected = Host.pattern(64 * A, 4);
        Path image = image(expected);
        try (BlockBackend b = Host.open(image, true, NONE)) {
            // aligned write (direct), then an unaligned write over part of it (buffered: dirty page cache)
            byte[] first = Host.pattern(8 * A, 5);
            ByteBuffer aligned = Libc.allocateAligned(8 * A, A);
            aligned.put(first).flip();
            b.write(4L * A, aligned);
            System.arraycopy(first, 0, expected, 4 * A, 8 * A);
            byte[] second = Host.pattern(3000, 6);
            Host.write(b, 5L * A + 123, second);
            System.arraycopy(second, 0, expected, 5 * A + 123, 3000);

            // an aligned (direct) read must see the buffered write, an unaligned one the direct write
            ByteBuffer back = Libc.allocateAligned(8 * A, A);
            b.read(4L * A, back);
            byte[] got = new byte[8 * A];
            back.flip().get(got);
            assertArrayEquals(java.util.Arrays.copyOfRange(expected, 4 * A, 12 * A), got);
            assertArrayEquals(java.util.Arrays.copyOfRange(expected, 4 * A + 7, 4 * A + 7 + 5000),
                    Host.read(b, 4L * A + 7, 5000));
            b.flush();
        }
        assertArrayEquals(expected, Files.readAllBytes(image));
    }

    @Test
    void anAlignedReadAcrossAnUnalignedEndGivesTheBytesThenZeros() throws IOException {
        int size = 3 * A + 100;
        byte[] data = Host.pattern(size, 7);
        try (BlockBackend b = Host.open(image(data), false, NONE)) {
            ByteBuffer dst = Libc.allocateAligned(4 * A, A);
            b.read(0, dst);
            byte[] got = new byte[4 * A];
            dst.flip().get(got);
            assertArrayEquals(java.util.Arrays.copyOf(data, 4 * A), got);

            ByteBuffer tail = Libc.allocateAligned(A, A);
            b.read(3L * A, tail);
            for (int i = 0; i < A; i++) {
                assertEquals(i < 100 ? data[3 * A + i] : 0, tail.get(i), "byte " + i + " of the last block");
            }
            ByteBuffer past = Libc.allocateAligned(A, A);
            b.read(8L * A, past);
            assertEquals(-1, past.flip().mismatch(ByteBuffer.allocate(A)), "wholly past the end: zeros");
        }
    }

    @Test
    void alignedWritesAtTheEndGrowTheImage() throws IOException {
        Path image = image(Host.pattern(2 * A, 8));
        byte[] more = Host.pattern(2 * A, 9);
        try (BlockBackend b = Host.open(image, true, NONE)) {
            ByteBuffer src = Libc.allocateAligned(2 * A, A);
            src.put(more).flip();
            b.write(2L * A, src);
            assertEquals(4 * A, b.size());
        }
        assertEquals(4 * A, Files.size(image));
        assertArrayEquals(more, java.util.Arrays.copyOfRange(Files.readAllBytes(image), 2 * A, 4 * A));
    }

    @Test
    void onTmpfsCacheNoneEitherWorksOrIsRefusedInOneLine() throws IOException {
        Path shm = Path.of("/dev/shm");
        Host.require(Files.isDirectory(shm) && Host.fsType(shm).equals("tmpfs"), "/dev/shm is not a tmpfs here");
        Path folder = Files.createTempDirectory(shm, "blockfuse-raw-test-");
        Path image = folder.resolve("t.raw");
        try {
            byte[] data = Host.pattern(4 * A, 10);
            Files.write(image, data);
            BlockBackend b;
            try {
                b = Host.open(image, true, NONE);
            } catch (ImageException e) { // kernels before 6.6 have no O_DIRECT on tmpfs
                assertEquals("image " + image + " cannot be opened with O_DIRECT (cache=none): Invalid argument",
                        e.getMessage());
                return;
            }
            try (b) {
                ByteBuffer dst = Libc.allocateAligned(4 * A, A);
                b.read(0, dst);
                byte[] got = new byte[4 * A];
                dst.flip().get(got);
                assertArrayEquals(data, got);
                assertArrayEquals(java.util.Arrays.copyOfRange(data, 33, 33 + 999), Host.read(b, 33, 999));
            }
        } finally {
            Files.deleteIfExists(image);
            Files.deleteIfExists(folder);
        }
    }

    @Test
    void whereTheHostHasNoODirectCacheNoneIsRefusedAndNothingStaysOpen() throws IOException {
        try (RamfsMount ramfs = RamfsMount.at(dir)) {
            Path image = ramfs.dir().resolve("r.raw");
            Files.write(image, Host.pattern(A, 11));
            ImageException e = assertThrows(ImageException.class, () -> Host.open(image, true, NONE));
            assertEquals("image " + image + " cannot be opened with O_DIRECT (cache=none): Invalid argument",
                    e.getMessage());
            assertFalse(openHere(image), "no descriptor of ours still points at the image");
            try (BlockBackend b = Host.open(image, true)) {
                assertEquals(1, b.directAlignment(), "the default cache works there");
            }
        }
    }

    static boolean openHere(Path file) throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.anyMatch(fd -> {
                try {
                    return Files.readSymbolicLink(fd).equals(file);
                } catch (IOException e) {
                    return false; // closed meanwhile
                }
            });
        }
    }
}
