package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.RequestStats;
import org.blockfuse.fuse.MountTable;
import org.blockfuse.legacy.LegacyTransport;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.raw.RawBackendFactory;

/**
 * Real exports for the fault and soak tests, on either transport. A missing capability (root, the
 * transport, a tool) fails the test: the test command is strict. {@link #close()} unmounts every
 * export it started, detaching and aborting a stuck one, so a failing test leaves nothing mounted.
 */
final class RealExports implements AutoCloseable {
    static final String LEGACY = LegacyTransport.NAME;
    static final String URING = UringTransport.NAME;

    private final List<FuseExport> exports = new ArrayList<>();
    /** Halt reasons reported by any export started here; a fault the export survives reports none. */
    final List<String> halts = new CopyOnWriteArrayList<>();

    /** The transport by name, failing (not skipping) when this machine cannot run it. */
    static FuseTransport transport(String name) {
        assertTrue(Libc.geteuid() == 0, "mounting needs root");
        FuseTransport t = name.equals(LEGACY) ? new LegacyTransport() : new UringTransport();
        var a = t.availability();
        assertTrue(a.available(), name + " is unavailable on this machine: " + a.reason());
        return t;
    }

    /** Fails when {@code tool} is not on the PATH. */
    static void requireTool(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return;
            }
        }
        fail(tool + " is not installed (./run-tests installs it)");
    }

    /** A sparse raw image file of {@code bytes}. */
    static Path sparseImage(Path file, long bytes) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(bytes);
        }
        return file;
    }

    static BlockBackend raw(Path image) throws IOException {
        return new RawBackendFactory().open(new BackendRequest(image, true, Map.of()));
    }

    /** Mounts {@code backend} at {@code target} over the named transport (writable, root-owned). */
    FuseExport start(String name, BlockBackend backend, Path target, boolean growable, String transport,
            Map<String, String> options) throws IOException {
        return start(name, backend, target, new ExportPolicy(true, growable, true, 0, 0), transport, options);
    }

    /** Mounts {@code backend} at {@code target} with {@code policy} over the named transport. */
    FuseExport start(String name, BlockBackend backend, Path target, ExportPolicy policy, String transport,
            Map<String, String> options) throws IOException {
        return start(name, backend, target, policy, transport, options, new RequestStats(true));
    }

    /** As above, recording into {@code stats}. */
    FuseExport start(String name, BlockBackend backend, Path target, ExportPolicy policy, String transport,
            Map<String, String> options, RequestStats stats) throws IOException {
        FuseExport e = FuseExport.start(name, backend, target, policy, name, options, transport(transport),
                (generation, reason) -> halts.add(name + ": " + reason), stats);
        exports.add(e);
        return e;
    }

    /** Closes one export now (close() then skips it). */
    void close(FuseExport e) {
        exports.remove(e);
        closeOne(e);
    }

    @Override
    public void close() throws IOException {
        for (FuseExport e : List.copyOf(exports)) {
            closeOne(e);
        }
        exports.clear();
    }

    private static void closeOne(FuseExport e) {
        try {
            e.close();
        } finally {
            try {
                if (MountTable.find(e.mountPoint()).isPresent()) {
                    Libc.umount2(e.mountPoint().toString(), Libc.MNT_DETACH);
                    e.abort();
                }
            } catch (IOException ignored) {
                // mountinfo unreadable: nothing more to undo from here
            }
        }
    }

    /** Runs a command to its end (bounded) and returns its exit code and merged output. */
    static Result run(int seconds, String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
        String out = finish(p, seconds);
        return new Result(p.exitValue(), out);
    }

    record Result(int exit, String output) {
    }

    /** Waits for a child; one that hangs is a failure (and is killed so the test can clean up). */
    static String finish(Process p, int seconds) throws Exception {
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return e.toString();
            }
        });
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            fail(p.info().commandLine().orElse("child") + " hung for " + seconds + " s");
        }
        return out.get(10, TimeUnit.SECONDS);
    }

    /** The exported file opened O_DIRECT through the mount: each call is one request to the server. */
    static final class DirectFile implements AutoCloseable {
        private final int fd;
        private final ByteBuffer buffer;

        DirectFile(Path file, int maxBytes) throws IOException {
            fd = Libc.open(file.toString(), Libc.O_RDWR | Libc.O_DIRECT, 0);
            buffer = Libc.allocateAligned(maxBytes, 4096);
        }

        /** pread of {@code length} bytes into {@code dst} (if not null); bytes read or -errno. */
        long read(long offset, byte[] dst, int length) {
            long n = Libc.pread(fd, Libc.address(buffer), length, offset);
            if (n > 0 && dst != null) {
                buffer.get(0, dst, 0, (int) n);
            }
            return n;
        }

        /** pwrite of {@code src}; bytes written or -errno. */
        long write(long offset, byte[] src) {
            buffer.put(0, src, 0, src.length);
            return Libc.pwrite(fd, Libc.address(buffer), src.length, offset);
        }

        /** fallocate(2) on the exported file; 0 or -errno. */
        int fallocate(int mode, long offset, long length) {
            return Libc.fallocate(fd, mode, offset, length);
        }

        void fsync() throws IOException {
            Libc.fdatasync(fd);
        }

        @Override
        public void close() {
            Libc.close(fd);
        }
    }
}
