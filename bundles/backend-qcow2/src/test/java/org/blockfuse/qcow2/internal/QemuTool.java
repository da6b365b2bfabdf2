package org.blockfuse.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackend.Extent;

/**
 * Makes test images with qemu-img / qemu-io in a scratch folder and checks our backend against QEMU's own
 * view: content against {@code qemu-img convert -O raw}, allocation against {@code qemu-img map}.
 */
final class QemuTool implements AutoCloseable {

    private static final long TIMEOUT_SECONDS = 60;
    private static final int CHUNK = 1 << 20;
    private static final Pattern MAP_ENTRY = Pattern.compile(
            "\"start\": (\\d+), \"length\": (\\d+),[^}]*\"data\": (true|false)");

    final Path dir;

    QemuTool() throws IOException {
        dir = Files.createTempDirectory(Path.of("/tmp"), "qcow2-test-");
    }

    Path path(String name) {
        return dir.resolve(name);
    }

    /** Runs a command in the scratch folder and returns its stdout; fails the test on a non-zero exit. */
    String run(String... command) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
        Process p = pb.start();
        byte[] out;
        try (InputStream in = p.getInputStream()) {
            out = in.readAllBytes();
        }
        try {
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("timed out: " + String.join(" ", command));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
        String text = new String(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", command) + " failed: " + text);
        }
        return text;
    }

    /** qemu-img create -f qcow2 [-o opts] name size, plus extra arguments placed before the name. */
    Path create(String name, String options, String size, String... extra) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (options != null) {
            cmd.addAll(List.of("-o", options));
        }
        cmd.addAll(List.of(extra));
        cmd.add(name);
        if (size != null) {
            cmd.add(size);
        }
        run(cmd.toArray(String[]::new));
        return path(name);
    }

    /** Runs qemu-io commands (e.g. "write -P 0x11 0 64k") on an image of the given format. */
    void ioAs(String format, String name, String... commands) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(name);
        run(cmd.toArray(String[]::new));
    }

    void io(String name, String... commands) throws IOException {
        ioAs("qcow2", name, commands);
    }

    /** A fully written raw file, so that its allocation status is "data" for QEMU and for us alike. */
    Path rawFile(String name, long length, int seed) throws IOException {
        Path p = path(name);
        byte[] block = new byte[CHUNK];
        try (var out = Files.newOutputStream(p)) {
            for (long done = 0; done < length; done += CHUNK) {
                int n = (int) Math.min(CHUNK, length - done);
                for (int i = 0; i < n; i++) {
                    block[i] = (byte) (seed + (done + i) / 512 * 7 + i);
                }
                out.write(block, 0, n);
            }
        }
        return p;
    }

    static BlockBackend open(Path image, Map<String, String> options) throws IOException {
        return new Qcow2BackendFactory().open(new BackendRequest(image, false, options));
    }

    /** Opens the image and compares every byte and every allocation run with QEMU's view. */
    void assertMatchesQemu(Path image) throws IOException {
        assertMatchesQemu(image, Map.of(), List.of());
    }

    void assertMatchesQemu(Path image, Map<String, String> options, List<String> convertArgs) throws IOException {
        Path reference = path(image.getFileName() + ".ref.raw");
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "convert"));
        cmd.addAll(convertArgs);
        cmd.addAll(List.of("-O", "raw", image.toString(), reference.toString()));
        run(cmd.toArray(String[]::new));
        try (BlockBackend backend = open(image, options)) {
            assertContent(backend, reference);
            if (convertArgs.isEmpty()) {
                assertEquals(qemuMap(image), ourMap(backend), "allocation map of " + image.getFileName());
            }
        } finally {
            Files.deleteIfExists(reference);
        }
    }

    /** Streams both in 1 MiB chunks, alternating direct and heap buffers to cover both read paths. */
    static void assertContent(BlockBackend backend, Path reference) throws IOException {
        long size = Files.size(reference);
        assertEquals(size, backend.size(), "virtual size");
        ByteBuffer direct = ByteBuffer.allocateDirect(CHUNK);
        ByteBuffer heap = ByteBuffer.allocate(CHUNK);
        byte[] ours = new byte[CHUNK];
        byte[] theirs = new byte[CHUNK];
        try (RandomAccessFile ref = new RandomAccessFile(reference.toFile(), "r")) {
            int round = 0;
            for (long pos = 0; pos < size; pos += CHUNK, round++) {
                int n = (int) Math.min(CHUNK, size - pos);
                ByteBuffer buf = (round & 1) == 0 ? direct : heap;
                buf.clear().limit(n);
                backend.read(pos, buf);
                assertEquals(n, buf.position(), "read must fill the buffer");
                buf.flip().get(ours, 0, n);
                ref.seek(pos);
                ref.readFully(theirs, 0, n);
                int mismatch = Arrays.mismatch(ours, 0, n, theirs, 0, n);
                assertEquals(-1, mismatch, "first differing byte at guest offset " + (pos + mismatch));
            }
        }
    }

    /** qemu-img map --output=json reduced to merged (start, length, data) runs. */
    List<Extent> qemuMap(Path image) throws IOException {
        String json = run("qemu-img", "map", "--output=json", image.toString());
        List<Extent> runs = new ArrayList<>();
        Matcher m = MAP_ENTRY.matcher(json);
        while (m.find()) {
            add(runs, new Extent(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)),
                    Boolean.parseBoolean(m.group(3))));
        }
        return runs;
    }

    static List<Extent> ourMap(BlockBackend backend) throws IOException {
        List<Extent> runs = new ArrayList<>();
        for (long pos = 0; pos < backend.size(); ) {
            Extent e = backend.extentAt(pos);
            assertEquals(pos, e.offset());
            assertTrue(e.length() > 0, "empty extent at " + pos);
            add(runs, e);
            pos = e.end();
        }
        return runs;
    }

    private static void add(List<Extent> runs, Extent e) {
        if (!runs.isEmpty()) {
            Extent last = runs.get(runs.size() - 1);
            if (last.data() == e.data() && last.end() == e.offset()) {
                runs.set(runs.size() - 1, new Extent(last.offset(), last.length() + e.length(), e.data()));
                return;
            }
        }
        runs.add(e);
    }

    /** Overwrites bytes of a file in place (to make damaged images on purpose). */
    static void patch(Path file, long offset, byte[] bytes) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(offset);
            f.write(bytes);
        }
    }

    static void patchInt(Path file, long offset, int value) throws IOException {
        patch(file, offset, ByteBuffer.allocate(Integer.BYTES).putInt(value).array());
    }

    static void patchLong(Path file, long offset, long value) throws IOException {
        patch(file, offset, ByteBuffer.allocate(Long.BYTES).putLong(value).array());
    }

    static long readLong(Path file, long offset) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
            f.seek(offset);
            return f.readLong();
        }
    }

    @Override
    public void close() throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
