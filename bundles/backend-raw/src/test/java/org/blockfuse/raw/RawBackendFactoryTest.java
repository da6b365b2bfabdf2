package org.blockfuse.raw;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.stream.Stream;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;
import org.blockfuse.nativeio.Libc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the factory accepts and refuses: the create option, the cache option, files that are not images,
 * read-only files and mounts. Every refusal is one line naming the problem and leaves nothing behind.
 */
class RawBackendFactoryTest {
    @TempDir(factory = Host.RootDisk.class)
    Path dir;

    private static ImageException refused(Executable open) {
        ImageException e = assertThrows(ImageException.class, open);
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e;
    }

    private static long entries(Path folder) throws IOException {
        try (Stream<Path> s = Files.walk(folder)) {
            return s.count();
        }
    }

    // ---- create

    @Test
    void createMakesASparsePrivateFileOfThatSize() throws IOException {
        Path image = dir.resolve("new.raw");
        try (BlockBackend b = Host.open(image, true, Map.of("create", "64M"))) {
            assertEquals(64L << 20, b.size());
            assertTrue(b.writable());
            assertTrue(b.allocatedBytes() <= 64 << 10, "sparse: " + b.allocatedBytes());
            assertEquals(new BlockBackend.Extent(0, 64L << 20, false), b.extentAt(0));
            assertArrayEquals(Host.zeros(4096), Host.read(b, (32L << 20) + 1, 4096));
        }
        assertEquals(64L << 20, Files.size(image));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(image)));
    }

    @Test
    void createTakesEveryUnitOfTheSizeParser() throws IOException {
        Map<String, Long> sizes = Map.of("65536", 65536L, "512K", 512L << 10, "3MiB", 3L << 20, "1G", 1L << 30,
                "2t", 2L << 40);
        for (Map.Entry<String, Long> s : sizes.entrySet()) {
            Path image = dir.resolve("size-" + s.getKey() + ".raw");
            try (BlockBackend b = Host.open(image, true, Map.of("create", s.getKey()))) {
                assertEquals(s.getValue(), b.size(), s.getKey());
            }
            Files.delete(image);
        }
    }

    @Test
    void createLeavesAnExistingImageUntouched() throws IOException {
        Path image = dir.resolve("old.raw");
        byte[] data = Host.pattern(10_000, 1);
        Files.write(image, data);
        FileTime mtime = FileTime.fromMillis(1_000_000_000_000L);
        Files.setLastModifiedTime(image, mtime);
        try (BlockBackend b = Host.open(image, true, Map.of("create", "1G"))) {
            assertEquals(10_000, b.size());
            assertArrayEquals(data, Host.read(b, 0, 10_000));
        }
        assertArrayEquals(data, Files.readAllBytes(image));
        assertEquals(mtime, Files.getLastModifiedTime(image));
    }

    @Test
    void createMakesMissingFolders() throws IOException {
        // the demo export's data/blockfuse/ does not exist on first start
        Path image = dir.resolve("a/b/new.raw");
        try (BlockBackend b = Host.open(image, true, Map.of("create", "1M"))) {
            assertEquals(1 << 20, b.size());
        }
        assertTrue(Files.isRegularFile(image));
    }

    @Test
    void aBadCreateSizeIsRefusedAndCreatesNothing() throws IOException {
        for (String bad : new String[] { "abc", "0", "-1M", "1.5G", "1E", "8192P", " " }) {
            Path image = dir.resolve("x/bad.raw");
            ImageException e = refused(() -> Host.open(image, true, Map.of("create", bad)));
            assertEquals("'" + bad + "' is not a size (examples: 65536, 64M, 1G)", e.getMessage());
            assertEquals(1, entries(dir), "nothing created for create=" + bad);
        }
    }

    @Test
    void aBadCreateSizeIsRefusedEvenWhenTheImageExists() throws IOException {
        // otherwise the typo shows only on the day the image is missing
        Path image = dir.resolve("exists.raw");
        Files.write(image, Host.pattern(4096, 2));
        ImageException e = refused(() -> Host.open(image, true, Map.of("create", "10 GB")));
        assertEquals("'10 GB' is not a size (examples: 65536, 64M, 1G)", e.getMessage());
    }

    @Test
    void aSizeTheFilesystemCannotHoldIsRefusedAndLeavesNothing() throws IOException {
        Host.require(Host.fsType(dir).startsWith("ext"), "needs ext2/3/4's 16 TiB file size limit, "
                + dir + " is " + Host.fsType(dir));
        Path image = dir.resolve("p/q/huge.raw");
        ImageException e = refused(() -> Host.open(image, true, Map.of("create", "8191P")));
        assertEquals("image " + image + " cannot be created with size 8191P: File too large", e.getMessage());
        assertEquals(1, entries(dir), "neither the file nor the folders made for it remain");
    }

    @Test
    void aCreatedImageThatThenCannotBeOpenedIsRemoved() throws IOException {
        try (RamfsMount ramfs = RamfsMount.at(dir)) { // no O_DIRECT there
            Path image = ramfs.dir().resolve("f/new.raw");
            ImageException e = refused(() -> Host.open(image, true, Map.of("create", "1M", "cache", "none")));
            assertEquals("image " + image + " cannot be opened with O_DIRECT (cache=none): Invalid argument",
                    e.getMessage());
            assertEquals(1, entries(ramfs.dir()), "neither the file nor its folder remain");
        }
    }

    @Test
    void aFolderInTheWayIsRefusedInOneLine() throws IOException {
        Path file = dir.resolve("plain");
        Files.write(file, new byte[1]);
        Path image = file.resolve("sub/new.raw");
        ImageException e = refused(() -> Host.open(image, true, Map.of("create", "1M")));
        assertTrue(e.getMessage().startsWith("image " + image + " cannot be created: "), e.getMessage());
        assertTrue(e.getMessage().contains(file.toString()), "names the file in the way: " + e.getMessage());
        assertEquals(2, entries(dir));
    }

    // ---- cache

    @Test
    void anUnknownCacheModeIsRefusedBeforeAnythingIsCreated() throws IOException {
        Path image = dir.resolve("c/new.raw");
        for (String bad : new String[] { "bogus", "None", "", "directsync" }) {
            ImageException e = refused(() -> Host.open(image, true, Map.of("cache", bad, "create", "1M")));
            assertEquals("cache must be 'none' or 'writeback', not '" + bad + "'", e.getMessage());
            assertEquals(1, entries(dir), "nothing created for cache=" + bad);
        }
    }

    // ---- what is not an image

    @Test
    void aMissingImageIsRefused() {
        Path image = dir.resolve("missing.raw");
        assertEquals("image " + image + " does not exist", refused(() -> Host.open(image, false)).getMessage());
    }

    @Test
    void aDirectoryIsRefused() {
        assertEquals("image " + dir + " is a directory", refused(() -> Host.open(dir, false)).getMessage());
    }

    @Test
    void aCharacterDeviceIsRefused() {
        assertEquals("image /dev/null is neither a regular file nor a block device",
                refused(() -> Host.open(Path.of("/dev/null"), false)).getMessage());
    }

    @Test
    void aFifoIsRefusedWithoutWaitingForAWriter() throws Exception {
        Path fifo = dir.resolve("fifo");
        Host.require(Host.onPath("mkfifo"), "mkfifo is not installed");
        Host.run("mkfifo", fifo.toString());
        try {
            ImageException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                    () -> refused(() -> Host.open(fifo, false)), "opening a FIFO blocks until a writer comes");
            assertEquals("image " + fifo + " is neither a regular file nor a block device", e.getMessage());
        } finally {
            // release an open(2) still blocked on the FIFO, if the backend got that far
            Libc.close(Libc.open(fifo.toString(), Libc.O_RDWR | Libc.O_NONBLOCK, 0));
        }
    }

    @Test
    void aRelativePathIsMadeAbsolute() throws IOException {
        Path image = dir.resolve("rel.raw");
        Files.write(image, Host.pattern(4096, 3));
        Path relative = Path.of("").toAbsolutePath().relativize(image);
        try (BlockBackend b = Host.open(relative, false)) {
            assertEquals(4096, b.size());
        }
        ImageException e = refused(() -> Host.open(relative.resolveSibling("none.raw"), false));
        assertEquals("image " + dir.resolve("none.raw") + " does not exist", e.getMessage());
    }

    // ---- read-only

    @Test
    void aReadOnlyRequestOpensAReadOnlyFile() throws IOException {
        Path image = dir.resolve("ro.raw");
        byte[] data = Host.pattern(8192, 4);
        Files.write(image, data);
        Files.setPosixFilePermissions(image, PosixFilePermissions.fromString("r--------"));
        try (BlockBackend b = Host.open(image, false)) {
            assertFalse(b.writable());
            assertArrayEquals(data, Host.read(b, 0, 8192));
            assertEquals(Libc.O_RDONLY, Host.openFlags(b.directFd()) & 3);
            b.flush(); // nothing to flush, no error
        }
        assertArrayEquals(data, Files.readAllBytes(image));
    }

    @Test
    void aWritableRequestOnAReadOnlyMountIsRefusedWithTheWayOut() throws IOException {
        try (RamfsMount ramfs = RamfsMount.at(dir)) {
            Path image = ramfs.dir().resolve("ro.raw");
            byte[] data = Host.pattern(8192, 5);
            Files.write(image, data);
            ramfs.remountReadOnly();
            ImageException e = refused(() -> Host.open(image, true));
            assertEquals("image " + image + " cannot be opened for writing (Read-only file system); "
                    + "export it without --writable", e.getMessage());
            try (BlockBackend b = Host.open(image, false)) {
                assertArrayEquals(data, Host.read(b, 0, 8192));
            }
            ImageException c = refused(() -> Host.open(ramfs.dir().resolve("new.raw"), true, Map.of("create", "1M")));
            assertTrue(c.getMessage().startsWith("image " + ramfs.dir().resolve("new.raw") + " cannot be created: "),
                    c.getMessage());
        }
    }

    @Test
    void closeIsIdempotent() throws IOException {
        Path image = dir.resolve("close.raw");
        Files.write(image, Host.pattern(4096, 6));
        BlockBackend b = Host.open(image, true);
        b.close();
        b.close();
        assertFalse(RawDirectIoTest.openHere(image));
    }
}
