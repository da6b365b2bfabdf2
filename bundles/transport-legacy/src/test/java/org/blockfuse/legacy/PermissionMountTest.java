package org.blockfuse.legacy;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.MountException;
import org.blockfuse.fuse.MountTable;
import org.blockfuse.raw.RawBackendFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Who may do what with a mounted export, checked through real mounts as root and as a second real
 * user ({@code runuser -u nobody}) with the system's own tools (stat, cat, chmod, truncate, fallocate).
 * The rules are QEMU's: 0600/0400 whatever allow-other says; group/other bits only with allow-other.
 */
class PermissionMountTest {
    private static final long SIZE = 8 << 20;
    private static final String OTHER = "nobody";

    private Path dir;
    private final List<FuseExport> exports = new ArrayList<>();

    @BeforeEach
    void folderEveryoneMayEnter() throws IOException {
        // JUnit's @TempDir is 0700: the second user could not even reach the mountpoint
        dir = Files.createTempDirectory("blockfuse-perm");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @AfterEach
    void unmountAndRemove() throws Exception {
        for (FuseExport e : exports) {
            e.close();
        }
        try (var files = Files.walk(dir)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                assertFalse(MountTable.find(p).isPresent(), p + " stays mounted");
                Files.delete(p);
            }
        }
    }

    private Path export(String name, boolean writable, boolean allowOther) throws IOException {
        Path image = dir.resolve(name + ".raw");
        if (!Files.exists(image)) {
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                f.setLength(SIZE);
            }
        }
        Path target = dir.resolve(name + ".img");
        exports.add(FuseExport.start(name, new RawBackendFactory().open(new BackendRequest(image, writable, Map.of())),
                target, new ExportPolicy(writable, false, allowOther, 0, 0), image.toString(), Map.of("workers", "1"),
                new LegacyTransport(), reason -> { }));
        return target;
    }

    /** Runs a command (as root, or as {@code user} when given); returns exit code and output. */
    private static Result run(String user, String... command) throws Exception {
        List<String> cmd = new ArrayList<>();
        if (user != null) {
            cmd.addAll(List.of("runuser", "-u", user, "--"));
        }
        cmd.addAll(List.of(command));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), String.join(" ", cmd) + " did not finish");
        return new Result(p.exitValue(), out);
    }

    private record Result(int code, String out) {
        Result ok() {
            assertEquals(0, code, out);
            return this;
        }

        Result refused(String why) {
            assertNotEquals(0, code, "expected a refusal, got: " + out);
            assertTrue(out.contains(why), "expected '" + why + "' in: " + out);
            return this;
        }
    }

    private static String mode(String user, Path p) throws Exception {
        return run(user, "stat", "-c", "%A", p.toString()).ok().out();
    }

    @Test
    void aDefaultExportIsPrivateToItsOwner() throws Exception {
        Path rw = export("rw", true, true);
        Path ro = export("ro", false, true);
        assertEquals("-rw-------", mode(null, rw));
        assertEquals("-r--------", mode(null, ro));
        assertEquals("-rw-------", mode(OTHER, rw), "allow-other delivers the request; the bits decide");
        run(OTHER, "cat", rw.toString()).refused("Permission denied");
        run(OTHER, "cat", ro.toString()).refused("Permission denied");
        run(OTHER, "dd", "if=/dev/zero", "of=" + rw, "bs=4k", "count=1", "conv=notrunc").refused("Permission denied");
        run(OTHER, "chmod", "666", rw.toString()).refused("Operation not permitted");
        assertEquals("-rw-------", mode(null, rw));
    }

    @Test
    void withoutAllowOtherNoBitsForOthersAndOthersCannotEvenLook() throws Exception {
        Path rw = export("closed", true, false);
        run(null, "chmod", "644", rw.toString()).refused("Operation not permitted");
        run(null, "chmod", "g+r", rw.toString()).refused("Operation not permitted");
        assertEquals("-rw-------", mode(null, rw), "a refused chmod leaves the mode as it was");
        run(null, "chmod", "400", rw.toString()).ok();
        assertEquals("-r--------", mode(null, rw), "the owner may change the user bits");
        run(null, "chmod", "600", rw.toString()).ok();
        assertEquals("-rw-------", mode(null, rw));
        run(OTHER, "stat", rw.toString()).refused("Permission denied");
        run(OTHER, "cat", rw.toString()).refused("Permission denied");
    }

    @Test
    void withAllowOtherTheOwnerMayOpenTheFileToOthersAndCloseItAgain() throws Exception {
        Path rw = export("shared", true, true);
        run(null, "chmod", "444", rw.toString()).ok();
        assertEquals("-r--r--r--", mode(null, rw));
        assertEquals(SIZE, Long.parseLong(run(OTHER, "sh", "-c", "cat " + rw + " | wc -c").ok().out()),
                "the other user reads the whole file");
        run(OTHER, "dd", "if=/dev/zero", "of=" + rw, "bs=4k", "count=1", "conv=notrunc").refused("Permission denied");
        run(OTHER, "truncate", "-s", "0", rw.toString()).refused("Permission denied");
        run(null, "chmod", "o-r", rw.toString()).ok();
        assertEquals("-r--r-----", mode(null, rw));
        run(OTHER, "cat", rw.toString()).refused("Permission denied");
        assertEquals(SIZE, Files.size(rw));
    }

    @Test
    void aReadOnlyExportCannotBeMadeWritableByAnyPathEvenByRoot() throws Exception {
        Path ro = export("locked", false, true);
        run(null, "dd", "if=/dev/zero", "of=" + ro, "bs=4k", "count=1", "conv=notrunc").refused("Permission denied");
        run(null, "truncate", "-s", "0", ro.toString()).refused("Permission denied");
        run(null, "fallocate", "-o", "0", "-l", "1M", ro.toString()).refused("Permission denied");
        run(null, "chmod", "u+w", ro.toString()).refused("Read-only file system");
        run(null, "chmod", "644", ro.toString()).refused("Read-only file system");
        assertEquals("-r--------", mode(null, ro));
        assertEquals(SIZE, Files.size(ro));
    }

    @Test
    void fallocatePastTheEndResizesANonGrowableExportAndAllocatesTheImage() throws Exception {
        Path rw = export("grow", true, true);
        Path image = dir.resolve("grow.raw");
        long usedBefore = blocks(image);
        run(null, "fallocate", "-o", Long.toString(SIZE), "-l", "1M", rw.toString()).ok();
        assertEquals(SIZE + (1 << 20), Files.size(rw));
        assertEquals(SIZE + (1 << 20), Files.size(image));
        assertTrue(blocks(image) - usedBefore >= (1 << 20) / 512, "the new range is allocated in the image: "
                + usedBefore + " -> " + blocks(image) + " sectors");
        run(null, "dd", "if=/dev/zero", "of=" + rw, "bs=4k", "count=1", "seek=" + ((SIZE + (2 << 20)) / 4096),
                "conv=notrunc").refused("No space left on device");
        assertEquals(SIZE + (1 << 20), Files.size(rw), "a write past the end still needs growable");
    }

    private static long blocks(Path p) throws Exception {
        return Long.parseLong(run(null, "stat", "-c", "%b", p.toString()).ok().out());
    }

    @Test
    void aSymlinkedMountpointIsRefusedAndASymlinkedFolderIsSeenThrough() throws Exception {
        Path victim = dir.resolve("victim");
        Files.writeString(victim, "root's file");
        Path link = dir.resolve("link.img");
        Files.createSymbolicLink(link, victim);
        Path image = dir.resolve("l.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        MountException refused = assertThrows(MountException.class, () -> FuseExport.start("l",
                new RawBackendFactory().open(new BackendRequest(image, false, Map.of())), link,
                new ExportPolicy(false, false, false, 0, 0), image.toString(), Map.of("workers", "1"),
                new LegacyTransport(), reason -> { }));
        assertTrue(refused.getMessage().contains("is a symbolic link"), refused.getMessage());
        assertFalse(MountTable.find(victim).isPresent());
        assertEquals("root's file", Files.readString(victim));

        Path real = Files.createDirectory(dir.resolve("real"));
        Path folderLink = Files.createSymbolicLink(dir.resolve("folder-link"), real);
        exports.add(FuseExport.start("f", new RawBackendFactory().open(new BackendRequest(image, false, Map.of())),
                folderLink.resolve("f.img"), new ExportPolicy(false, false, false, 0, 0), image.toString(),
                Map.of("workers", "1"), new LegacyTransport(), reason -> { }));
        assertEquals(real.toRealPath().resolve("f.img"), exports.get(0).mountPoint());
        assertTrue(MountTable.find(real.toRealPath().resolve("f.img")).isPresent(), "mounted on the real path");
        exports.remove(0).close();
        assertFalse(Files.exists(real.resolve("f.img")), "the created mountpoint is removed again");
        Files.delete(real);
    }
}
