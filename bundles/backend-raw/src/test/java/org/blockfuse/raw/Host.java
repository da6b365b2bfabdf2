package org.blockfuse.raw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.nativeio.Libc;
import org.junit.jupiter.api.extension.AnnotatedElementContext;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.io.TempDirFactory;

/**
 * What the raw backend tests need from the machine: real folders on the root disk, root, external tools,
 * and I/O helpers over direct buffers. Every missing capability goes through {@link #require} so that a
 * strict test mode has one place to turn a skip into a failure.
 */
final class Host {
    private static final long COMMAND_TIMEOUT_SECONDS = 60;

    private Host() {
    }

    /** Skips the test with the cause when the machine lacks a capability the test needs. */
    /**
     * A capability the test needs: missing, it fails the strict run (the default, and what CI
     * runs); with -Dblockfuse.tests.lenient=true it skips instead.
     */
    static void require(boolean available, String cause) {
        if (Boolean.getBoolean("blockfuse.tests.lenient")) {
            assumeTrue(available, cause);
        } else if (!available) {
            throw new AssertionError("missing capability: " + cause + " (run with -Dblockfuse.tests.lenient=true to skip)");
        }
    }

    static void requireRoot(String why) {
        require(Libc.geteuid() == 0, why + " needs root");
    }

    static BlockBackend open(Path image, boolean writable, Map<String, String> options) throws IOException {
        return new RawBackendFactory().open(new BackendRequest(image, writable, options));
    }

    static BlockBackend open(Path image, boolean writable) throws IOException {
        return open(image, writable, Map.of());
    }

    /** Reads {@code length} bytes through the backend into a fresh direct buffer pre-filled with 0xAA. */
    static byte[] read(BlockBackend b, long offset, int length) throws IOException {
        ByteBuffer dst = ByteBuffer.allocateDirect(length);
        for (int i = 0; i < length; i++) {
            dst.put(i, (byte) 0xAA);
        }
        b.read(offset, dst);
        assertEquals(length, dst.position(), "read fills the buffer to its limit");
        byte[] out = new byte[length];
        dst.flip().get(out);
        return out;
    }

    static void write(BlockBackend b, long offset, byte[] data) throws IOException {
        ByteBuffer src = ByteBuffer.allocateDirect(data.length);
        src.put(data).flip();
        b.write(offset, src);
        assertEquals(data.length, src.position(), "write consumes the buffer to its limit");
    }

    static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        new java.util.Random(seed).nextBytes(b);
        for (int i = 0; i < length; i++) {
            if (b[i] == 0) {
                b[i] = 1; // no zero bytes, so a stray zero shows
            }
        }
        return b;
    }

    static byte[] zeros(int length) {
        return new byte[length];
    }

    /** Runs a command and returns its stdout; throws with its output on a non-zero exit or a timeout. */
    static String run(String... command) throws IOException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        try {
            if (!p.waitFor(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", command) + " did not finish in " + COMMAND_TIMEOUT_SECONDS + " s");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + String.join(" ", command), e);
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", command) + " exited " + p.exitValue() + ": " + out);
        }
        return out;
    }

    static boolean onPath(String tool) {
        String path = System.getenv("PATH");
        if (path != null) {
            for (String d : path.split(":")) {
                if (Files.isExecutable(Path.of(d, tool))) {
                    return true;
                }
            }
        }
        return Files.isExecutable(Path.of("/usr/sbin", tool)) || Files.isExecutable(Path.of("/sbin", tool));
    }

    /** The open flags of one of our descriptors, from /proc/self/fdinfo (octal there). */
    static int openFlags(int fd) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
            if (line.startsWith("flags:")) {
                return Integer.parseInt(line.substring("flags:".length()).trim(), 8);
            }
        }
        throw new IOException("no flags line in /proc/self/fdinfo/" + fd);
    }

    static String fsType(Path p) throws IOException {
        return Files.getFileStore(p).type();
    }

    /**
     * {@code @TempDir(factory = Host.RootDisk.class)}: a folder on the root disk (/var/tmp), not on a
     * tmpfs /tmp, for tests that need holes at block granularity and O_DIRECT.
     */
    static final class RootDisk implements TempDirFactory {
        @Override
        public Path createTempDirectory(AnnotatedElementContext element, ExtensionContext context) throws IOException {
            return Files.createTempDirectory(Path.of("/var/tmp"), "blockfuse-raw-test-");
        }
    }
}
