package org.blockfuse.itests;

import static org.junit.Assert.*;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Random;

import java.lang.management.ManagementFactory;
import java.util.concurrent.TimeUnit;

import javax.inject.Inject;
import javax.management.MBeanServer;
import javax.management.ObjectName;

import org.blockfuse.api.ExportInfo;
import org.blockfuse.nativeio.Libc;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;

/**
 * An operator's session against the real distribution: exports made through the shell and
 * through etc/ files, used through real FUSE mounts, checked against the image bytes.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ExportIT extends KarafSupport {
    private static final int MIB = 1 << 20;
    private static final long IMAGE_SIZE = 64L * MIB;

    @Inject
    BundleContext context;

    private Bundle bundle(String symbolicName) {
        return Arrays.stream(context.getBundles()).filter(b -> b.getSymbolicName().equals(symbolicName)).findFirst()
                .orElseThrow(() -> new AssertionError("no bundle " + symbolicName));
    }

    @Configuration
    public Option[] config() {
        return baseConfig();
    }

    private static Path newImage(Path dir, String name) throws IOException {
        Path image = dir.resolve(name);
        Files.deleteIfExists(image);
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(IMAGE_SIZE);
        }
        return image;
    }

    @Test
    public void demoExportComesUpFromTheShippedConfiguration() throws Exception {
        ExportInfo demo = awaitState("demo", "active", 60);
        assertEquals(1L << 30, demo.virtualSize());
        assertEquals(1L << 30, Files.size(Path.of(DEMO_MOUNT)));
        assertTrue(isMounted(Path.of(DEMO_MOUNT)));
        assertTrue(run("blockfuse:export-list --no-format").contains(DEMO_MOUNT));
    }

    @Test
    public void readWriteHolesAndTruncateThroughTheShellOnEveryTransport() throws Exception {
        for (String transport : transports()) {
            Path dir = workDir("rw-" + transport);
            Path image = newImage(dir, "disk.raw");
            Path mount = dir.resolve("disk.img");
            String name = "rw-" + transport.replace('_', '-');
            run("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image + " " + mount);
            try {
                ExportInfo info = awaitState(name, "active", 30);
                assertTrue(info.transport(), info.transport().startsWith(transport));
                assertEquals(IMAGE_SIZE, Files.size(mount));
                assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(mount)));

                // scattered patterns, read back through the mount and found in the image after fsync
                Random random = new Random(42);
                long[] offsets = { 0, 4096, 3 * MIB + 17, 33 * MIB - 100, IMAGE_SIZE - 4096 };
                byte[][] data = new byte[offsets.length][];
                try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                    for (int i = 0; i < offsets.length; i++) {
                        data[i] = new byte[i == 2 ? 3 * MIB : 4096];
                        random.nextBytes(data[i]);
                        assertEquals(data[i].length, ch.write(ByteBuffer.wrap(data[i]), offsets[i]));
                    }
                    ch.force(true);
                    for (int i = 0; i < offsets.length; i++) {
                        ByteBuffer back = ByteBuffer.allocate(data[i].length);
                        ch.read(back, offsets[i]);
                        assertArrayEquals("through the mount at " + offsets[i], data[i], back.array());
                    }
                }
                try (FileChannel img = FileChannel.open(image, StandardOpenOption.READ)) {
                    for (int i = 0; i < offsets.length; i++) {
                        ByteBuffer back = ByteBuffer.allocate(data[i].length);
                        img.read(back, offsets[i]);
                        assertArrayEquals("in the image at " + offsets[i], data[i], back.array());
                    }
                }

                // punch a hole and find it with SEEK_HOLE / SEEK_DATA through the mount
                exec("fallocate", "-p", "-o", Long.toString(3 * MIB), "-l", Long.toString(MIB), mount.toString());
                int fd = Libc.open(mount.toString(), Libc.O_RDONLY, 0);
                try {
                    assertEquals(3L * MIB, Libc.lseek(fd, 3 * MIB, Libc.SEEK_HOLE));
                    assertEquals(4L * MIB, Libc.lseek(fd, 3 * MIB, Libc.SEEK_DATA));
                    assertEquals(0L, Libc.lseek(fd, 0, Libc.SEEK_DATA));
                    assertEquals(8192L, Libc.lseek(fd, 0, Libc.SEEK_HOLE));
                    assertEquals(IMAGE_SIZE - 1, Libc.lseek(fd, IMAGE_SIZE - 1, Libc.SEEK_DATA));
                    assertEquals(IMAGE_SIZE, Libc.lseek(fd, IMAGE_SIZE - 1, Libc.SEEK_HOLE));
                    long blocks = Libc.fstat(fd).blocks();
                    long imageBlocks = Long.parseLong(exec("stat", "-c", "%b", image.toString()).trim());
                    assertEquals("st_blocks follows the image's allocation", imageBlocks, blocks);
                } finally {
                    Libc.close(fd);
                }
                byte[] zeros = new byte[MIB];
                try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.READ)) {
                    ByteBuffer back = ByteBuffer.allocate(MIB);
                    ch.read(back, 3 * MIB);
                    assertArrayEquals("a punched hole reads as zeros", zeros, back.array());
                }

                // truncate resizes the image
                try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.WRITE)) {
                    ch.truncate(32 * MIB);
                }
                assertEquals(32L * MIB, Files.size(mount));
                assertEquals(32L * MIB, Files.size(image));
                try (RandomAccessFile f = new RandomAccessFile(mount.toFile(), "rw")) {
                    f.setLength(IMAGE_SIZE);
                }
                assertEquals(IMAGE_SIZE, Files.size(image));
            } finally {
                run("blockfuse:export-remove " + name);
            }
            assertFalse(isMounted(mount));
            assertFalse("the mountpoint blockfuse created is removed", Files.exists(mount));
            assertFalse(Files.exists(Path.of(System.getProperty("karaf.etc"), "org.blockfuse.export-" + name + ".cfg")));
        }
    }

    @Test
    public void writesAtTheEndFollowGrowablePolicy() throws Exception {
        Path dir = workDir("grow");
        Path image = newImage(dir, "fixed.raw");
        Path mount = dir.resolve("fixed.img");
        run("blockfuse:export-add --writable fixed " + image + " " + mount);
        try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.WRITE)) {
            assertEquals("a write crossing the end is shortened", 4096,
                    ch.write(ByteBuffer.allocate(8192), IMAGE_SIZE - 4096));
            IOException e = assertThrows(IOException.class, () -> ch.write(ByteBuffer.allocate(4096), IMAGE_SIZE));
            assertTrue(e.getMessage(), e.getMessage().contains("No space left"));
        } finally {
            run("blockfuse:export-remove fixed");
        }
        Path grow = newImage(dir, "grow.raw");
        Path growMount = dir.resolve("grow.img");
        run("blockfuse:export-add --writable --growable growing " + grow + " " + growMount);
        try (FileChannel ch = FileChannel.open(growMount, StandardOpenOption.WRITE)) {
            assertEquals(4096, ch.write(ByteBuffer.allocate(4096), IMAGE_SIZE + MIB));
            assertEquals(IMAGE_SIZE + MIB + 4096, Files.size(growMount));
            assertEquals(IMAGE_SIZE + MIB + 4096, Files.size(grow));
        } finally {
            run("blockfuse:export-remove growing");
        }
    }

    @Test
    public void readOnlyExportRefusesWrites() throws Exception {
        Path dir = workDir("ro");
        Path image = newImage(dir, "ro.raw");
        Path mount = dir.resolve("ro.img");
        Files.deleteIfExists(mount);
        Files.createFile(mount); // an existing plain file: it must be a plain file again afterwards
        run("blockfuse:export-add ro " + image + " " + mount);
        try {
            assertTrue(isMounted(mount));
            assertEquals("r--------", PosixFilePermissions.toString(Files.getPosixFilePermissions(mount)));
            assertThrows(IOException.class, () -> FileChannel.open(mount, StandardOpenOption.WRITE).close());
            AssertionError truncate = assertThrows(AssertionError.class, () -> exec("truncate", "-s", "1M", mount.toString()));
            assertTrue(truncate.getMessage(), truncate.getMessage().contains("ermission denied"));
            AssertionError chmod = assertThrows(AssertionError.class, () -> exec("chmod", "u+w", mount.toString()));
            assertTrue(chmod.getMessage(), chmod.getMessage().contains("Read-only"));
            try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.READ)) {
                assertEquals(4096, ch.read(ByteBuffer.allocate(4096), 0));
            }
        } finally {
            run("blockfuse:export-remove ro");
        }
        assertFalse(isMounted(mount));
        assertTrue("a pre-existing mountpoint stays, as a plain file", Files.isRegularFile(mount));
        assertEquals(0, Files.size(mount));
    }

    @Test
    public void theImageItselfCanBeTheMountpoint() throws Exception {
        Path dir = workDir("self");
        Path image = newImage(dir, "self.raw");
        run("blockfuse:export-add --writable self " + image + " " + image);
        try {
            assertTrue(isMounted(image));
            try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap("over itself".getBytes()), 1000);
                ch.force(true);
            }
        } finally {
            run("blockfuse:export-remove self");
        }
        assertFalse(isMounted(image));
        byte[] back = new byte[11];
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "r")) {
            f.seek(1000);
            f.readFully(back);
        }
        assertEquals("over itself", new String(back));
    }

    @Test
    public void anEtcFileCreatesTheExportAndDeletingItRemovesIt() throws Exception {
        Path dir = workDir("etc");
        Path image = newImage(dir, "etc.raw");
        Path mount = dir.resolve("etc.img");
        Path cfg = Path.of(System.getProperty("karaf.etc"), "org.blockfuse.export-dropped.cfg");
        Files.writeString(cfg, "image = " + image + "\nmountpoint = " + mount + "\nwritable = true\n");
        try {
            ExportInfo info = awaitState("dropped", "active", 30);
            assertTrue(info.writable());
            assertTrue(isMounted(mount));
        } finally {
            Files.deleteIfExists(cfg);
        }
        awaitGone("dropped", 30);
        assertFalse(isMounted(mount));
        assertFalse(Files.exists(mount));
    }

    @Test
    public void stoppingTheExportBundleUnmountsAndStartingItBringsExportsBack() throws Exception {
        Path dir = workDir("restart");
        Path image = newImage(dir, "restart.raw");
        Path mount = dir.resolve("restart.img");
        run("blockfuse:export-add --writable again " + image + " " + mount);
        try {
            Bundle export = bundle("org.blockfuse.export");
            export.stop();
            assertFalse(isMounted(mount));
            assertFalse(isMounted(Path.of(DEMO_MOUNT)));
            export.start();
            // the injected service belongs to the stopped bundle: ask the shell, which sees the new one
            long deadline = System.currentTimeMillis() + 30_000;
            String list = "";
            while (System.currentTimeMillis() < deadline && !(list.contains("again") && list.contains("active"))) {
                Thread.sleep(200);
                list = run("blockfuse:export-list --no-format");
            }
            assertTrue(list, list.contains("again"));
            assertTrue(isMounted(mount));
            assertTrue(isMounted(Path.of(DEMO_MOUNT)));
        } finally {
            run("blockfuse:export-remove again");
        }
    }

    @Test
    public void badInputsGetAClearErrorAndLeaveNothingBehind() throws Exception {
        Path dir = workDir("bad");
        Path image = newImage(dir, "good.raw");
        Path readOnly = newImage(dir, "readonly.raw");
        Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("r--r--r--"));
        Path mount = dir.resolve("bad.img");
        String[][] cases = {
            { "bad1 " + dir.resolve("missing.raw") + " " + mount, "does not exist" },
            { "bad2 " + dir + " " + mount, "is a directory" },
            { "bad3 " + image + " " + dir.resolve("no/such/folder/x.img"), "mountpoint folder" },
            { "bad4 " + image + " " + dir, "is a directory" },
            { "--format vmdk bad5 " + image + " " + mount, "unknown format 'vmdk'" },
            { "--transport carrier-pigeon bad6 " + image + " " + mount, "unknown transport 'carrier-pigeon'" },
            { "--workers many bad7 " + image + " " + mount, "workers must be a whole number" },
            { "--queue-depth -3 bad8 " + image + " " + mount, "queue-depth must be a whole number" },
            { "--writable bad9 " + readOnly + " " + mount, "read-only; export it without --writable" },
            { "--allow-other maybe bad10 " + image + " " + mount, "allow-other must be on, off or auto" },
            { "--growable bad11 " + image + " " + mount, "--growable needs --writable" },
            { "'bad name' " + image + " " + mount, "invalid" },
            { "--writable --format qcow2 bad12 " + image + " " + mount, "read-only; drop --writable" },
            { "bad13 relative.raw " + mount, "must be absolute" },
        };
        for (String[] c : cases) {
            String message = fails("blockfuse:export-add " + c[0]);
            assertTrue("'" + c[0] + "' -> " + message, message.contains(c[1]));
            assertFalse(c[0], isMounted(mount));
            assertFalse(c[0] + " left the mountpoint file", Files.exists(mount));
        }
        // duplicates
        run("blockfuse:export-add first " + image + " " + mount);
        try {
            assertTrue(fails("blockfuse:export-add first " + image + " " + dir.resolve("other.img")).contains("already exists"));
            assertTrue(fails("blockfuse:export-add second " + image + " " + mount).contains("already used by export first"));
            assertTrue(fails("blockfuse:export-remove nobody").contains("no export named nobody"));
        } finally {
            run("blockfuse:export-remove first");
        }
        try (var files = Files.list(Path.of(System.getProperty("karaf.etc")))) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().startsWith("org.blockfuse.export-bad")));
        }
        assertFalse(Files.exists(dir.resolve("other.img")));
    }

    @Test
    public void fioVerifiedRandomReadWriteHasNoErrorsOnEveryTransport() throws Exception {
        for (String transport : transports()) {
            Path dir = workDir("fio-" + transport);
            Path image = newImage(dir, "fio.raw");
            Path mount = dir.resolve("fio.img");
            String name = "fio-" + transport.replace('_', '-');
            run("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image + " " + mount);
            try {
                String out = exec("fio", "--name=verify", "--filename=" + mount, "--rw=randrw", "--bs=4k",
                        "--ioengine=libaio", "--direct=1", "--iodepth=16", "--numjobs=4", "--size=16M",
                        "--offset_increment=16M", "--verify=crc32c", "--verify_state_save=0", "--group_reporting");
                assertTrue(out, out.contains("err= 0"));
                assertFalse(out, out.contains("verify: bad"));
            } finally {
                run("blockfuse:export-remove " + name);
            }
        }
    }

    @Test
    public void qcow2ImagesReadByteExactThroughTheMount() throws Exception {
        Path dir = workDir("qcow2");
        Path base = dir.resolve("base.qcow2");
        Path top = dir.resolve("top.qcow2");
        Files.deleteIfExists(base);
        Files.deleteIfExists(top);
        exec("qemu-img", "create", "-q", "-f", "qcow2", base.toString(), "48M");
        exec("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4M", "-c", "write -c -P 0x22 8M 1M", base.toString());
        exec("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", top.toString());
        exec("qemu-io", "-f", "qcow2", "-c", "write -P 0x33 2M 1M", "-c", "write -z 8M 64k", "-c", "write -P 0x44 40M 1M",
                top.toString());
        exec("qemu-img", "snapshot", "-c", "first", top.toString());
        exec("qemu-io", "-f", "qcow2", "-c", "write -P 0x55 0 64k", top.toString());
        Path expected = dir.resolve("expected.raw");
        exec("qemu-img", "convert", "-O", "raw", top.toString(), expected.toString());

        Path mount = dir.resolve("top.img");
        assertTrue(fails("blockfuse:export-add --format qcow2 --writable q " + top + " " + mount).contains("read-only"));
        run("blockfuse:export-add --format qcow2 q " + top + " " + mount);
        try {
            assertEquals(48L * MIB, Files.size(mount));
            assertEquals("whole content equals qemu-img convert -O raw", -1L, Files.mismatch(mount, expected));
            int fd = Libc.open(mount.toString(), Libc.O_RDONLY, 0);
            try {
                // qemu-img map: data at 0-4M (base), 8M+64k-9M (base, compressed), 40M-41M (top); zeros at 8M-8M+64k
                assertEquals(0L, Libc.lseek(fd, 0, Libc.SEEK_DATA));
                assertEquals(4L * MIB, Libc.lseek(fd, 0, Libc.SEEK_HOLE));
                assertEquals(8L * MIB + 65536, Libc.lseek(fd, 4 * MIB, Libc.SEEK_DATA));
                assertEquals(40L * MIB, Libc.lseek(fd, 9 * MIB, Libc.SEEK_DATA));
                assertEquals(41L * MIB, Libc.lseek(fd, 40 * MIB, Libc.SEEK_HOLE));
            } finally {
                Libc.close(fd);
            }
            assertThrows(IOException.class, () -> FileChannel.open(mount, StandardOpenOption.WRITE).close());
            assertTrue(run("blockfuse:snapshot-list " + top).contains("first"));
        } finally {
            run("blockfuse:export-remove q");
        }
        Path snapExpected = dir.resolve("snap.raw");
        exec("qemu-img", "convert", "-l", "snapshot.name=first", "-O", "raw", top.toString(), snapExpected.toString());
        run("blockfuse:export-add --format qcow2 --snapshot first qs " + top + " " + mount);
        try {
            assertEquals("the snapshot equals qemu-img convert -l", -1L, Files.mismatch(mount, snapExpected));
        } finally {
            run("blockfuse:export-remove qs");
        }
        Path broken = dir.resolve("broken.qcow2");
        Files.copy(top, broken, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (RandomAccessFile f = new RandomAccessFile(broken.toFile(), "rw")) {
            f.seek(4);
            f.writeInt(9); // version 9
        }
        String message = fails("blockfuse:export-add --format qcow2 qb " + broken + " " + dir.resolve("broken.img"));
        assertTrue(message, message.contains("version"));
        assertFalse(Files.exists(dir.resolve("broken.img")));
    }

    @Test
    public void ioUringJoinsALiveLegacyConnectionAndLeavingMountsAgainOnLegacy() throws Exception {
        org.junit.Assume.assumeTrue("io_uring is not available here", transports().contains("io_uring"));
        Path dir = workDir("swap");
        Path image = newImage(dir, "swap.raw");
        Path mount = dir.resolve("swap.img");
        run("blockfuse:export-add --writable swap " + image + " " + mount);
        Bundle uring = bundle("org.blockfuse.transport-uring");
        try {
            awaitTransport("swap", "io_uring", 30);
            // io_uring leaves: no connection can move back to /dev/fuse, so the export is mounted anew on legacy
            uring.stop();
            awaitTransport("swap", "legacy", 30);
            int legacyConnection = connectionOf(mount);
            byte[] a = new byte[1 << 16];
            new Random(1).nextBytes(a);
            try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(a), 5 * MIB);
                // io_uring comes back: it joins the live legacy connection, the mount never goes away
                uring.start();
                awaitTransport("swap", "io_uring", 30);
                assertEquals("same connection, no remount", legacyConnection, connectionOf(mount));
                ByteBuffer back = ByteBuffer.allocate(a.length);
                ch.read(back, 5 * MIB); // through the file that was open across the switch
                assertArrayEquals(a, back.array());
            }
            String out = exec("fio", "--name=after-swap", "--filename=" + mount, "--rw=randrw", "--bs=4k",
                    "--ioengine=libaio", "--direct=1", "--iodepth=8", "--numjobs=2", "--size=8M",
                    "--offset_increment=8M", "--verify=crc32c", "--verify_state_save=0", "--group_reporting");
            assertTrue(out, out.contains("err= 0"));
        } finally {
            if (uring.getState() != Bundle.ACTIVE) {
                uring.start();
            }
            run("blockfuse:export-remove swap");
        }
        assertFalse(isMounted(mount));
    }

    @Test
    public void passthroughWhereEverySemanticHoldsAndARefusalWithTheReasonElsewhere() throws Exception {
        Path dir = workDir("passthrough");
        Path image = newImage(dir, "pt.raw");
        Path mount = dir.resolve("pt.img");
        String refused = fails("blockfuse:export-add --writable --passthrough on ptfixed " + image + " " + mount);
        assertTrue(refused, refused.contains("passthrough=on: a writable fixed-size image file would grow"));
        assertFalse("nothing left behind", Files.exists(mount));
        run("blockfuse:export-add --writable --growable ptgrow " + image + " " + mount);
        try {
            ExportInfo info = awaitState("ptgrow", "active", 30);
            assertTrue(info.transport(), info.transport().endsWith("+ passthrough"));
            byte[] a = new byte[1 << 16];
            new Random(5).nextBytes(a);
            try (FileChannel ch = FileChannel.open(mount, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(a), 3 * MIB);
                ch.force(false);
            }
            byte[] back = new byte[a.length];
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "r")) {
                f.seek(3 * MIB);
                f.readFully(back);
            }
            assertArrayEquals("written straight into the image", a, back);
        } finally {
            run("blockfuse:export-remove ptgrow");
        }
        // a fixed-size writable export on auto: served by blockfuse, not passed through
        run("blockfuse:export-add --writable ptauto " + image + " " + mount);
        try {
            assertFalse(awaitState("ptauto", "active", 30).transport().contains("passthrough"));
        } finally {
            run("blockfuse:export-remove ptauto");
        }
    }

    @Test
    public void transportListExplainsEachTransport() throws Exception {
        String out = run("blockfuse:transport-list --no-format");
        assertTrue(out, out.contains("legacy"));
        assertTrue(run("blockfuse:export-add --help").contains("--growable"));
        String meta = run("config:meta org.blockfuse.export");
        // every key of the export, of each installed backend and of each transport, as their owners declare them
        for (String key : new String[] { "image", "mountpoint", "writable", "growable", "allow-other", "transport", "cache",
                "create", "restart", "drain-grace", "workers", "queue-depth", "pin-cpus", "spin-us", "snapshot",
                "backing-policy", "l2-cache-size" }) {
            assertTrue("config:meta explains " + key + ":\n" + meta, meta.contains(key));
        }
    }

    /** Adds writable raw export NAME of a fresh 64 MiB image in its own work folder; returns its mountpoint. */
    /** nbdkit serving {@code image} on a Unix socket, started by this JVM (it exits with it); ready when the socket is. */
    private static Process nbdkit(Path socket, String... plugin) throws Exception {
        Files.deleteIfExists(socket);
        java.util.List<String> c = new java.util.ArrayList<>(java.util.List.of("nbdkit", "-f", "--exit-with-parent",
                "-U", socket.toString()));
        c.addAll(java.util.List.of(plugin));
        Process p = new ProcessBuilder(c).redirectErrorStream(true)
                .redirectOutput(socket.resolveSibling(socket.getFileName() + ".log").toFile()).start();
        assertTrue("nbdkit listens on " + socket, waitUntil(() -> Files.exists(socket) || !p.isAlive(), 15) && p.isAlive());
        return p;
    }

    private static void stop(Process p) throws InterruptedException {
        p.destroyForcibly();
        assertTrue("nbdkit ended", p.waitFor(15, TimeUnit.SECONDS));
    }

    /** export-add --format nbd: a disk on an NBD server, through the shell, on every transport; the server killed and back. */
    @Test
    public void nbdDiskOnAServerExportedThroughTheShell() throws Exception {
        Path dir = workDir("nbd");
        Path image = dir.resolve("served.raw");
        byte[] bytes = new byte[16 * MIB];
        new Random(12).nextBytes(bytes);
        Files.write(image, bytes);
        Path socket = dir.resolve("nbd.sock");
        Process server = nbdkit(socket, "file", image.toString());
        String uri = "nbd+unix:///?socket=" + socket;
        try {
            for (String transport : transports()) {
                Path mount = dir.resolve("nb-" + transport + ".img");
                run("blockfuse:export-add --format nbd --writable --connections 2 --transport " + transport + " nb \"" + uri
                        + "\" " + mount);
                try {
                    String list = run("blockfuse:export-list --no-format");
                    assertTrue(list, list.contains(uri) && list.contains("2 of 2 connections up"));
                    assertEquals("the mount serves the served file", -1L, Files.mismatch(mount, image));
                    byte[] data = new byte[4096];
                    new Random(13).nextBytes(data);
                    try (FileChannel f = FileChannel.open(mount, StandardOpenOption.WRITE)) {
                        f.write(ByteBuffer.wrap(data), 8 * MIB);
                        f.force(false);
                    }
                    try (FileChannel f = FileChannel.open(image, StandardOpenOption.READ)) {
                        ByteBuffer got = ByteBuffer.allocate(4096);
                        f.read(got, 8 * MIB);
                        assertArrayEquals("the write reached the served file", data, got.array());
                    }
                    System.arraycopy(data, 0, bytes, 8 * MIB, 4096);

                    stop(server); // the server goes away: export-list says so, the export stays
                    assertTrue(waitUntil(() -> run("blockfuse:export-list --no-format").contains("down"), 15));
                    server = nbdkit(socket, "file", image.toString());
                    assertTrue("reconnected", waitUntil(() -> run("blockfuse:export-list --no-format")
                            .contains("2 of 2 connections up, "), 30));
                    assertEquals("the same bytes after the server came back", -1L, Files.mismatch(mount, image));
                    assertEquals("active", awaitState("nb", "active", 5).state());
                } finally {
                    run("blockfuse:export-remove nb");
                }
            }
            // bad inputs: one line each, nothing left behind
            Path mount = dir.resolve("bad.img");
            assertTrue(fails("blockfuse:export-add --format nbd x nbd:///disk " + mount).contains("names no host"));
            assertTrue(fails("blockfuse:export-add --format nbd x ftp://127.0.0.1/x " + mount).contains("must start with nbd://"));
            assertTrue(fails("blockfuse:export-add --format nbd --writable --growable x \"" + uri + "\" " + mount)
                    .contains("drop --growable"));
            assertTrue(fails("blockfuse:export-add --format nbd --connections 99 x \"" + uri + "\" " + mount)
                    .contains("connections"));
            String absent = fails("blockfuse:export-add --format nbd x \"nbd+unix:///?socket=" + dir.resolve("none.sock")
                    + "\" " + mount);
            assertTrue(absent, absent.contains("cannot be reached") && !absent.contains("\n"));
            assertFalse(Files.exists(mount));
            assertFalse(exports().get("x").isPresent());
        } finally {
            stop(server);
        }
    }

    private Path addRawExport(String name, String options) throws Exception {
        Path dir = workDir(name);
        Path image = newImage(dir, name + ".raw");
        Path mount = dir.resolve(name + ".img");
        run("blockfuse:export-add --writable " + options + name + " " + image + " " + mount);
        return mount;
    }

    /** export-stats NAME --no-format: the totals row (15 fields, the first the name) as numbers where they are. */
    private String[] statsRow(String name) throws Exception {
        String out = run("blockfuse:export-stats --no-format " + name);
        for (String line : out.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length == 15 && f[0].equals(name)) {
                return f;
            }
        }
        throw new AssertionError("no totals row for " + name + " in:\n" + out);
    }

    private static final int ST_REQUESTS = 1, ST_READS = 2, ST_READ_BYTES = 3, ST_WRITES = 4, ST_WRITTEN = 5,
            ST_ERRORS = 6, ST_P99 = 11;

    private static long delta(String[] before, String[] after, int column) {
        return Long.parseLong(after[column]) - Long.parseLong(before[column]);
    }

    /** An MXBean's Map attribute arrives as open data: a table of (key, value) rows. */
    private static java.util.Map<String, Long> openMap(Object attribute) {
        java.util.Map<String, Long> out = new java.util.TreeMap<>();
        for (Object row : ((javax.management.openmbean.TabularData) attribute).values()) {
            javax.management.openmbean.CompositeData c = (javax.management.openmbean.CompositeData) row;
            out.put((String) c.get("key"), (Long) c.get("value"));
        }
        return out;
    }

    private static void awaitMBean(MBeanServer server, ObjectName name) throws Exception {
        assertTrue(name + " was never registered", waitUntil(() -> server.isRegistered(name), 15));
    }

    /**
     * Known I/O through the mount moves the figures by exactly that much, in export-stats and in the
     * export's MBean alike: N O_DIRECT reads of 4 KiB are N READs and N x 4096 bytes.
     */
    @Test
    public void statisticsMoveExactlyWithKnownIoInTheShellAndOverJmx() throws Exception {
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        for (String transport : transports()) {
            String name = "st-" + transport.replace('_', '-');
            Path mount = addRawExport(name, "--transport " + transport + " ");
            try {
                awaitState(name, "active", 30);
                ObjectName bean = new ObjectName("org.blockfuse:type=export,name=" + name);
                awaitMBean(server, bean);
                String[] before = statsRow(name);
                long jmxReads = (Long) server.getAttribute(bean, "Reads");
                long jmxWritten = (Long) server.getAttribute(bean, "BytesWritten");

                int reads = 64;
                int writes = 32;
                exec("dd", "if=" + mount, "of=/dev/null", "bs=4096", "count=" + reads, "iflag=direct", "status=none");
                exec("dd", "if=/dev/urandom", "of=" + mount, "bs=4096", "count=" + writes, "oflag=direct",
                        "conv=notrunc", "status=none");

                String[] after = statsRow(name);
                assertEquals(String.join(" ", after), reads, delta(before, after, ST_READS));
                assertEquals((long) reads * 4096, delta(before, after, ST_READ_BYTES));
                assertEquals(writes, delta(before, after, ST_WRITES));
                assertEquals((long) writes * 4096, delta(before, after, ST_WRITTEN));
                // error replies are counted by errno; the kernel's first GETXATTR gets ENOSYS (and then stops asking)
                assertTrue(String.join(" ", after), delta(before, after, ST_ERRORS) <= 1);
                java.util.Map<String, Long> byErrno = openMap(server.getAttribute(bean, "ErrorsByErrno"));
                assertFalse("no I/O error: " + byErrno, byErrno.containsKey("EIO"));
                java.util.Map<String, Long> byOpcode = openMap(server.getAttribute(bean, "RequestsByOpcode"));
                assertTrue(byOpcode.toString(), byOpcode.getOrDefault("READ", 0L) >= reads);
                assertTrue(delta(before, after, ST_REQUESTS) >= reads + writes);
                assertTrue("p99 in microseconds: " + after[ST_P99], Long.parseLong(after[ST_P99]) >= 0);
                assertEquals(reads, (Long) server.getAttribute(bean, "Reads") - jmxReads);
                assertEquals((long) writes * 4096, (Long) server.getAttribute(bean, "BytesWritten") - jmxWritten);
                assertTrue((Long) server.getAttribute(bean, "LatencyMaxMicros") > 0);
                assertEquals("active", server.getAttribute(bean, "State"));
                assertTrue((Integer) server.getAttribute(bean, "ProtocolMinor") >= 31);
                ObjectName tbean = new ObjectName("org.blockfuse:type=transport,name=" + transport);
                awaitMBean(server, tbean);
                assertEquals(Boolean.TRUE, server.getAttribute(tbean, "Available"));
                assertTrue((Integer) server.getAttribute(tbean, "Exports") >= 1);
                assertTrue((Long) server.getAttribute(tbean, "RequestsServed") >= reads + writes);

                // export-info: what was negotiated, one key and value per line
                String info = run("blockfuse:export-info --no-format " + name);
                assertTrue(info, info.matches("(?s).*protocol\\s+7\\.\\d+.*"));
                assertTrue(info, info.matches("(?s).*max_write\\s+\\d+.*"));
                assertTrue(info, info.contains("MAX_PAGES"));
                assertTrue(info, info.contains("transport") && info.contains(transport));
                assertTrue(info, info.contains("queue 0"));

                // status: every export's health and what the kernel supports
                String status = run("blockfuse:status --no-format");
                assertTrue(status, status.lines().anyMatch(l -> l.trim().startsWith(name) && l.contains("active")));
                assertTrue(status, status.contains("passthrough"));

                // the refreshing view, two rounds of one second
                String watch = run("blockfuse:export-stats --interval 1 --count 2 --no-format " + name);
                assertEquals(watch, 2, watch.lines().filter(l -> l.trim().startsWith(name + " ") || l.trim().startsWith(name + "\t")).count());
            } finally {
                run("blockfuse:export-remove " + name);
            }
            assertTrue("its MBean goes with the export",
                    waitUntil(() -> !server.isRegistered(new ObjectName("org.blockfuse:type=export,name=" + name)), 15));
        }
        assertTrue(fails("blockfuse:export-stats nosuch").contains("no export named 'nosuch'"));
        assertTrue(fails("blockfuse:export-stats --count 3 demo").contains("--count needs --interval"));
    }

    private interface Check {
        boolean holds() throws Exception;
    }

    private static boolean waitUntil(Check c, long seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!c.holds()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(100);
        }
        return true;
    }

    /** log:set DEBUG org.blockfuse.fuse traces every request: opcode, unique, offset, length, result, microseconds. */
    @Test
    public void debugLoggingTracesEachRequest() throws Exception {
        Path mount = addRawExport("trace", "");
        try {
            awaitState("trace", "active", 30);
            setLogLevel("DEBUG");
            try {
                // pax-logging applies a level asynchronously: read block after block until one is traced
                assertTrue("no READ was traced within 20 s of log:set DEBUG", tracedWithin(mount, 1, 20, true));
            } finally {
                setLogLevel("INFO");
            }
            // and once INFO is applied, requests leave no line again
            assertTrue("READs still traced 20 s after log:set INFO", tracedWithin(mount, 5000, 20, false));
        } finally {
            run("blockfuse:export-remove trace");
        }
    }

    /**
     * log:set LEVEL org.blockfuse.fuse. Karaf refuses it ("Unrecognized configuration") until
     * fileinstall has put etc/org.ops4j.pax.logging.cfg into ConfigAdmin, which early in a run it may not have yet.
     */
    private void setLogLevel(String level) throws Exception {
        String[] failure = {""};
        boolean set = waitUntil(() -> {
            try {
                run("log:set " + level + " org.blockfuse.fuse");
                return true;
            } catch (IllegalStateException e) {
                failure[0] = e.getMessage();
                return false;
            }
        }, 30);
        assertTrue("log:set " + level + " was refused for 30 s: " + failure[0], set);
    }

    /**
     * Reads 4 KiB blocks (O_DIRECT, a new block each round, from {@code firstBlock}) until a read's trace
     * line shows up ({@code wanted} true) or a read leaves none ({@code wanted} false); bounded.
     */
    private boolean tracedWithin(Path mount, int firstBlock, int seconds, boolean wanted) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        for (int block = firstBlock; System.nanoTime() < deadline; block++) {
            exec("dd", "if=" + mount, "of=/dev/null", "bs=4096", "count=1", "skip=" + block, "iflag=direct", "status=none");
            String line = "trace: READ unique \\d+ offset " + block * 4096L + " length 4096 -> 4096 bytes in \\d+ us";
            boolean traced = waitUntil(() -> java.util.regex.Pattern.compile(line).matcher(run("log:display -n 200")).find(), 1);
            if (traced == wanted) {
                return true;
            }
        }
        return false;
    }

    /** A removal that has to wait for a client says so first: which file, held by whom, for how long. */
    @Test
    public void removalWaitingForAnOpenFileSaysWhatItWaitsFor() throws Exception {
        Path mount = addRawExport("notice", "");
        awaitState("notice", "active", 30);
        FileChannel held = FileChannel.open(mount, StandardOpenOption.READ);
        Thread closer = new Thread(() -> {
            try {
                Thread.sleep(1500); // the client finishes while the removal waits
                held.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        closer.start();
        long started = System.nanoTime();
        String out = run("blockfuse:export-remove notice");
        long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
        closer.join();
        assertTrue(out, out.matches("(?s).*notice: 1 file is open \\(java\\[\\d+\\] fd \\d+\\); the removal waits up to 10 s.*"));
        assertTrue(out, out.contains("Export notice removed"));
        assertTrue("the removal ended when the client closed, not at the end of the grace: " + tookMillis + " ms",
                tookMillis < 9000);
        assertFalse(isMounted(mount));
    }

    @Test
    public void stoppingTheTransportBundleStopsItsExportsAndStartingItBringsThemBack() throws Exception {
        Path dir = workDir("feature");
        Path image = newImage(dir, "f.raw");
        Path mount = dir.resolve("f.img");
        run("blockfuse:export-add --transport legacy feat " + image + " " + mount);
        try {
            // the transport's service goes away exactly as on feature:uninstall (which the boot feature would veto)
            Bundle legacy = bundle("org.blockfuse.transport-legacy");
            legacy.stop();
            try {
                assertFalse("exports on the transport are unmounted", isMounted(mount));
                assertTrue(run("blockfuse:export-list --no-format").contains("waiting"));
            } finally {
                legacy.start();
            }
            awaitState("feat", "active", 30);
            assertTrue(isMounted(mount));
        } finally {
            run("blockfuse:export-remove feat");
        }
    }
}
