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

    /** Closing a file of a dead connection reports ENOTCONN (its FLUSH cannot be answered): expected. */
    private static void closeDead(FileChannel held) {
        try {
            held.close();
        } catch (IOException expected) {
            // Transport endpoint is not connected
        }
    }

    private static String readBack(Path mount) throws IOException {
        try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(14);
            ch.read(b, 4096);
            return new String(b.array(), StandardCharsets.US_ASCII);
        }
    }

    /** Something that ends the live connection of the export mounted at {@code mount}. */
    private interface Fault {
        void kill(Path mount, int connection) throws Exception;
    }

    @Test
    public void anAbortedConnectionIsNoticedAndMountedAgainOnEveryTransport() throws Exception {
        noticedAndMountedAgain("abort", "the kernel ended the connection",
                (mount, connection) -> Files.writeString(Path.of("/sys/fs/fuse/connections/" + connection + "/abort"), "1"));
    }

    @Test
    public void aForeignLazyUnmountIsNoticedWhileAClientHoldsTheFileAndTheExportComesBack() throws Exception {
        // the held client must then get errors: not a ghost file on a detached mount
        noticedAndMountedAgain("umount", "no longer mounted", (mount, connection) -> exec("umount", "-l", mount.toString()));
    }

    /**
     * On every transport, with a client holding the file: {@code fault} ends the connection, the
     * export shows failed with {@code reason} within {@link #NOTICE_MILLIS}, the client gets an
     * error, and the export comes back by itself serving the same bytes.
     */
    private void noticedAndMountedAgain(String prefix, String reason, Fault fault) throws Exception {
        for (String transport : transports()) {
            String name = prefix + "-" + transport.replace('_', '-');
            Path dir = workDir(name);
            Path mount = dir.resolve("disk.img");
            run("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image(dir) + " " + mount);
            try {
                int before = connectionOf(mount);
                FileChannel held = FileChannel.open(mount, StandardOpenOption.READ);
                try {
                    long t0 = System.nanoTime();
                    fault.kill(mount, before);
                    long noticed = awaitFailed(name, t0, reason);
                    System.out.println(transport + ": " + prefix + " noticed after " + noticed + " ms");
                    assertTrue(transport + ": noticed after " + noticed + " ms", noticed <= NOTICE_MILLIS);
                    assertDeadFor(held);
                } finally {
                    closeDead(held);
                }
                awaitState(name, "active", 30);
                // the kernel may hand the new connection the freed number again: what counts is that it serves
                assertTrue(connectionOf(mount) > 0);
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
            String history = run("blockfuse:export-list --verbose");
            assertTrue(history, history.contains("starting -> active"));
            assertTrue(history, history.contains("active -> stopping"));
            assertTrue(history, history.contains("stopping -> failed  halted: the kernel ended the connection"));
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

    /** Threads of ours in this JVM (the container runs the server). */
    private static java.util.Set<String> blockfuseThreads() {
        java.util.Set<String> names = new java.util.TreeSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive() && t.getName().startsWith("blockfuse-") && !t.getName().startsWith("blockfuse-export-")) {
                names.add(t.getName());
            }
        }
        return names;
    }

    /** Open fds of this JVM that point at /dev/fuse or into {@code dir}. */
    private static java.util.List<String> fdsInto(Path dir) throws IOException {
        java.util.List<String> found = new java.util.ArrayList<>();
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.equals("/dev/fuse") || target.startsWith(dir.toString())) {
                        found.add(fd.getFileName() + " -> " + target);
                    }
                } catch (IOException gone) {
                    // closed while we listed
                }
            }
        }
        return found;
    }

    @Test
    public void removalUnderFioLoadLeavesNoMountThreadOrFdOnEveryTransport() throws Exception {
        for (String transport : transports()) {
            String name = "load-" + transport.replace('_', '-');
            Path dir = workDir(name);
            Path mount = dir.resolve("disk.img");
            java.util.Set<String> threadsBefore = blockfuseThreads();
            java.util.List<String> devBefore = fdsInto(dir);
            run("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image(dir) + " " + mount);
            Process fio = new ProcessBuilder("fio", "--name=load", "--filename=" + mount, "--rw=randrw", "--bs=4k",
                    "--direct=1", "--ioengine=libaio", "--iodepth=16", "--numjobs=4", "--size=4M",
                    "--offset_increment=4M", "--time_based", "--runtime=60", "--verify_state_save=0",
                    "--group_reporting").redirectErrorStream(true).redirectOutput(dir.resolve("fio.out").toFile()).start();
            try {
                awaitWritten(dir.resolve("disk.raw"), 1 << 20);
                long t0 = System.nanoTime();
                run("blockfuse:export-remove " + name);
                long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                assertTrue(transport + ": fio must end once the export is gone", fio.waitFor(30, TimeUnit.SECONDS));
                assertFalse(isMounted(mount));
                System.out.println(transport + ": removal under load took " + took + " ms; fio exit " + fio.exitValue());
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!blockfuseThreads().equals(threadsBefore) && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                }
                assertEquals(transport + ": blockfuse threads", threadsBefore, blockfuseThreads());
                assertEquals(transport + ": fds on /dev/fuse or the image", devBefore, fdsInto(dir));
            } finally {
                fio.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                if (exports().get(name).isPresent()) {
                    run("blockfuse:export-remove " + name);
                }
            }
        }
    }

    /** Waits until fio has really written through the export: the sparse image gains {@code bytes} of blocks. */
    private static void awaitWritten(Path image, long bytes) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (Long.parseLong(exec("stat", "-c", "%b", image.toString()).trim()) * 512 >= bytes) {
                return;
            }
            Thread.sleep(20);
        }
        fail("fio did not get going on " + image);
    }
}
