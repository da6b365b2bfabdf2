package org.blockfuse.itests;

import static org.junit.Assert.*;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Issue 8, fault 5 (bundle stop): bundle:stop of the export bundle while fio runs randrw against an
 * export, on every transport. fio ends promptly (an error is fine), nothing stays mounted, and no
 * blockfuse thread and no fd on /dev/fuse or an image remains in the container JVM; bundle:start
 * brings the export back from its configuration, serving the same bytes.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class BundleStopUnderLoadIT extends KarafSupport {
    private static final String EXPORT_BUNDLE = "org.blockfuse.export";
    /** fio works in the first {@link FioLoad#SPAN} bytes; a marker after them must survive. */
    private static final long MARKER_AT = FioLoad.SPAN + 4096;
    private static final String MARKER = "the same bytes";
    /** Clients holding the file get 10 s (drain), then the connection is aborted. */
    private static final long FIO_END_MILLIS = 20_000;

    @Configuration
    public Option[] config() {
        return baseConfig();
    }

    private static Path image(Path dir) throws IOException {
        Path image = dir.resolve("disk.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(FioLoad.SPAN + (1 << 20));
            f.seek(MARKER_AT);
            f.write(MARKER.getBytes(StandardCharsets.US_ASCII));
        }
        return image;
    }

    /** Every live thread of ours in this JVM (the container runs the server). */
    private static Set<String> blockfuseThreads() {
        Set<String> names = new TreeSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive() && t.getName().startsWith("blockfuse-")) {
                names.add(t.getName());
            }
        }
        return names;
    }

    /** Open fds of this JVM on /dev/fuse or on a file under one of {@code dirs}. */
    private static List<String> fusesAndImages(Path... dirs) throws IOException {
        List<String> found = new ArrayList<>();
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    boolean ours = target.equals("/dev/fuse");
                    for (Path d : dirs) {
                        ours |= target.startsWith(d + "/");
                    }
                    if (ours) {
                        found.add(fd.getFileName() + " -> " + target);
                    }
                } catch (IOException gone) {
                    // closed while we listed
                }
            }
        }
        return found;
    }

    private static String readMarker(Path mount) throws IOException {
        try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(MARKER.length());
            ch.read(b, MARKER_AT);
            return new String(b.array(), StandardCharsets.US_ASCII);
        }
    }

    /** The export bundle's state as bundle:list shows it (looked up by its symbolic name). */
    private String exportBundleLine() throws Exception {
        return run("bundle:list -s --no-format").lines().filter(l -> l.contains(EXPORT_BUNDLE)).findFirst()
                .orElseThrow(() -> new AssertionError("bundle:list shows no " + EXPORT_BUNDLE));
    }

    @Test
    public void bundleStopUnderFioLoadLeavesNoMountThreadOrFdAndBundleStartBringsTheExportBackOnEveryTransport()
            throws Exception {
        Path demoDir = Path.of(DEMO_MOUNT).getParent();
        for (String transport : transports()) {
            String name = "stop-" + transport.replace('_', '-');
            Path dir = workDir(name);
            Path mount = dir.resolve("disk.img");
            run("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image(dir) + " " + mount);
            assertTrue(exportBundleLine(), exportBundleLine().contains("Active"));
            FioLoad fio = FioLoad.start(name, mount, dir.resolve("fio.out"));
            try {
                fio.awaitWritten(dir.resolve("disk.raw"), 1 << 20);
                long t0 = System.nanoTime();
                run("bundle:stop " + EXPORT_BUNDLE);
                long stopMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                assertTrue(transport + ": fio must end once the export bundle is stopped", fio.awaitEnd(FIO_END_MILLIS));
                long fioMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                assertTrue(exportBundleLine(), exportBundleLine().contains("Resolved"));
                assertFalse(transport + ": still mounted", isMounted(mount));
                assertFalse(transport + ": the demo is still mounted", isMounted(Path.of(DEMO_MOUNT)));

                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!blockfuseThreads().isEmpty() && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                }
                long threadsMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                System.out.printf("bundle stop %s: bundle:stop took %d ms, fio ended after %d ms (exit %d: %s), "
                        + "last blockfuse thread gone after %d ms%n", transport, stopMillis, fioMillis, fio.exitValue(),
                        fio.firstError(), threadsMillis);
                assertEquals(transport + ": blockfuse threads after bundle:stop", Set.of(), blockfuseThreads());
                assertEquals(transport + ": fds on /dev/fuse or an image after bundle:stop", List.of(),
                        fusesAndImages(dir, demoDir));
            } finally {
                fio.close(); // by PID
                run("bundle:start " + EXPORT_BUNDLE); // no-op if it is active
            }
            awaitTransport(name, transport, 60);
            assertTrue(isMounted(mount));
            assertEquals(transport + ": the export serves the same bytes", MARKER, readMarker(mount));
            awaitState("demo", "active", 60);
            run("blockfuse:export-remove " + name);
            assertFalse(isMounted(mount));
        }
    }
}
