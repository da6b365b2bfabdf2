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
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.ExportInfo;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * A connection that dies under its export, on every transport: aborted through fusectl, or
 * lazily unmounted by someone else while a client holds the file open. The export notices within
 * 2 s, shows failed with the reason, mounts itself again (restart = on-failure) on a new
 * connection at the same path with the same bytes; with restart = never it stays failed until
 * blockfuse:export-restart.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ConnectionFailureIT extends KarafSupport {
    private static final long SIZE = 16 << 20;
    private static final long NOTICE_MILLIS = 2000;

    @Configuration
    public Option[] config() {
        return baseConfig();
    }

    private static Path image(Path dir) throws IOException {
        Path image = dir.resolve("disk.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(SIZE);
            f.seek(4096);
            f.write("the same bytes".getBytes(StandardCharsets.US_ASCII));
        }
        return image;
    }

    /** Waits until the export leaves "active" for "failed"; returns how long that took. */
    private long awaitFailed(String name, long startNanos, String reason) throws Exception {
        while (true) {
            ExportInfo i = exports().get(name).orElseThrow();
            if (i.state().equals("failed")) {
                assertTrue(i.detail(), i.detail().contains(reason));
                return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
            }
            if (System.nanoTime() - startNanos > TimeUnit.SECONDS.toNanos(10)) {
                fail("export " + name + " did not notice its dead connection: " + i);
            }
            Thread.sleep(20);
        }
    }

    private static void assertDeadFor(FileChannel held) {
        ByteBuffer b = ByteBuffer.allocate(4096);
        try {
            held.read(b, 0);
            fail("a client of the dead connection must get an error");
        } catch (IOException expected) {
            // ENOTCONN / ECONNABORTED: the connection is gone
        }
    }

    private static String readBack(Path mount) throws IOException {
        try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(14);
            ch.read(b, 4096);
            return new String(b.array(), StandardCharsets.US_ASCII);
        }
    }

    @Test
    public void anAbortedConnectionIsNoticedAndMountedAgainOnEveryTransport() throws Exception {
        for (String transport : transports()) {
            String name = "abort-" + transport.replace('_', '-');
            Path dir = workDir(name);
            Path mount = dir.resolve("disk.img");
            run("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image(dir) + " " + mount);
            try {
                int before = connectionOf(mount);
                try (FileChannel held = FileChannel.open(mount, StandardOpenOption.READ)) {
                    long t0 = System.nanoTime();
                    Files.writeString(Path.of("/sys/fs/fuse/connections/" + before + "/abort"), "1");
                    long noticed = awaitFailed(name, t0, "the kernel ended the connection");
                    assertTrue(transport + ": noticed after " + noticed + " ms", noticed <= NOTICE_MILLIS);
                    assertDeadFor(held);
                }
                awaitState(name, "active", 30);
                int after = connectionOf(mount);
                assertNotEquals("a new connection", before, after);
                assertEquals("the same bytes", readBack(mount));
            } finally {
                run("blockfuse:export-remove " + name);
            }
            assertFalse(isMounted(mount));
        }
    }

    @Test
    public void aForeignLazyUnmountIsNoticedWhileAClientHoldsTheFileAndTheExportComesBack() throws Exception {
        for (String transport : transports()) {
            String name = "umount-" + transport.replace('_', '-');
            Path dir = workDir(name);
            Path mount = dir.resolve("disk.img");
            run("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image(dir) + " " + mount);
            try {
                int before = connectionOf(mount);
                try (FileChannel held = FileChannel.open(mount, StandardOpenOption.READ)) {
                    long t0 = System.nanoTime();
                    exec("umount", "-l", mount.toString());
                    long noticed = awaitFailed(name, t0, "no longer mounted");
                    assertTrue(transport + ": noticed after " + noticed + " ms", noticed <= NOTICE_MILLIS);
                    assertDeadFor(held); // not a ghost file on a detached mount
                }
                awaitState(name, "active", 30);
                assertNotEquals("a new connection", before, connectionOf(mount));
                assertEquals("the same bytes", readBack(mount));
            } finally {
                run("blockfuse:export-remove " + name);
            }
            assertFalse(isMounted(mount));
        }
    }

    @Test
    public void restartNeverStaysFailedUntilExportRestart() throws Exception {
        String name = "never";
        Path dir = workDir(name);
        Path mount = dir.resolve("disk.img");
        Path image = image(dir);
        Files.writeString(Path.of(System.getProperty("karaf.etc"), "org.blockfuse.export-" + name + ".cfg"),
                "image = " + image + "\nmountpoint = " + mount + "\nwritable = true\nrestart = never\n");
        try {
            awaitState(name, "active", 60);
            Files.writeString(Path.of("/sys/fs/fuse/connections/" + connectionOf(mount) + "/abort"), "1");
            awaitFailed(name, System.nanoTime(), "the kernel ended the connection");
            assertFalse("restart = never does not mount again", isMounted(mount));
            String out = run("blockfuse:export-restart " + name);
            assertTrue(out, out.contains("restarted"));
            assertEquals("active", exports().get(name).orElseThrow().state());
            assertEquals("the same bytes", readBack(mount));
        } finally {
            run("blockfuse:export-remove " + name);
        }
        assertFalse(isMounted(mount));
        String bad = fails("blockfuse:export-restart nosuch");
        assertTrue(bad, bad.contains("no export named nosuch"));
    }
}
