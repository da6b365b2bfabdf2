package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.blockfuse.fuse.MountTable;
import org.blockfuse.nativeio.Libc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The export code run by a second real user ({@code runuser -u nobody}), with real mounts: the
 * mount goes through fusermount3 (the _FUSE_COMMFD handshake, the /dev/fuse fd received with
 * SCM_RIGHTS), nobody reads and writes the file with fio verify, the bytes land in nobody's image,
 * root is kept out (no allow_other: /etc/fuse.conf has no user_allow_other here, and auto falls
 * back), and the unmount goes through {@code fusermount3 -u}.
 */
class UnprivilegedMountTest {
    private static final String USER = "nobody";
    private static final int MIB = 1 << 20;
    private static final Path DEV_FUSE = Path.of("/dev/fuse");
    private Path dir;
    private Process server;
    /** /dev/fuse's mode before the test, restored after it. */
    private java.util.Set<java.nio.file.attribute.PosixFilePermission> devFuseMode;

    @BeforeEach
    void setUp() throws Exception {
        assertEquals(0, Libc.geteuid(), "the test switches to another user: needs root");
        RealExports.requireTool("runuser");
        RealExports.requireTool("fio");
        assertTrue(Files.isExecutable(Path.of("/usr/bin/fusermount3")), "fusermount3 is not installed (fuse3)");
        // Debian's udev makes /dev/fuse 0666 (every unprivileged FUSE mount needs that); a machine
        // without udev (this one: 0600) gets it for the test and its own mode back afterwards
        devFuseMode = Files.getPosixFilePermissions(DEV_FUSE);
        Files.setPosixFilePermissions(DEV_FUSE, PosixFilePermissions.fromString("rw-rw-rw-"));
        dir = Files.createTempDirectory(Path.of("/tmp"), "bf-user-");
        UserPrincipalLookupService users = dir.getFileSystem().getUserPrincipalLookupService();
        Files.setOwner(dir, users.lookupPrincipalByName(USER));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @AfterEach
    void tearDown() throws Exception {
        if (devFuseMode != null) {
            Files.setPosixFilePermissions(DEV_FUSE, devFuseMode);
        }
        if (server != null && server.isAlive()) {
            server.getOutputStream().close();
            if (!server.waitFor(20, TimeUnit.SECONDS)) {
                server.destroyForcibly();
            }
        }
        Path mount = dir.resolve("disk.img");
        if (MountTable.find(mount).isPresent()) {
            Libc.umount2(mount.toString(), Libc.MNT_DETACH); // root may always detach a user's mount
        }
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    /** The test class path, copied where nobody can read it (root's ~/.m2 is private). */
    private String readableClassPath() throws IOException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Path copies = Files.createDirectories(dir.resolve("cp"));
        List<String> entries = new ArrayList<>();
        int n = 0;
        for (String e : cp.split(":")) {
            Path p = Path.of(e);
            if (!Files.exists(p)) {
                continue;
            }
            if (Files.isDirectory(p)) {
                Path to = copies.resolve("d" + n++);
                try (Stream<Path> tree = Files.walk(p)) {
                    for (Path f : (Iterable<Path>) tree::iterator) {
                        Path dst = to.resolve(p.relativize(f).toString());
                        if (Files.isDirectory(f)) {
                            Files.createDirectories(dst);
                        } else {
                            Files.copy(f, dst, StandardCopyOption.REPLACE_EXISTING);
                        }
                    }
                }
                entries.add(to.toString());
            } else {
                Path to = copies.resolve(n++ + "-" + p.getFileName());
                Files.copy(p, to);
                entries.add(to.toString());
            }
        }
        try (Stream<Path> tree = Files.walk(copies)) {
            for (Path f : (Iterable<Path>) tree::iterator) {
                Files.setPosixFilePermissions(f, PosixFilePermissions.fromString(Files.isDirectory(f) ? "rwxr-xr-x" : "rw-r--r--"));
            }
        }
        return String.join(":", entries);
    }

    private static Process asUser(String... command) throws IOException {
        List<String> argv = new ArrayList<>(List.of("runuser", "-u", USER, "--"));
        argv.addAll(List.of(command));
        return new ProcessBuilder(argv).redirectErrorStream(true).start();
    }

    private static RealExports.Result runAsUser(int seconds, String... command) throws Exception {
        List<String> argv = new ArrayList<>(List.of("runuser", "-u", USER, "--"));
        argv.addAll(List.of(command));
        return RealExports.run(seconds, argv.toArray(new String[0]));
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    @Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void anOrdinaryUserMountsThroughFusermountAndOnlyThatUserGetsIn(String transport) throws Exception {
        Path image = dir.resolve("disk.raw");
        byte[] seed = new byte[32 * MIB];
        new Random(11).nextBytes(seed);
        Files.write(image, seed);
        Path mount = dir.resolve("disk.img");
        Files.createFile(mount);
        UserPrincipalLookupService users = dir.getFileSystem().getUserPrincipalLookupService();
        Files.setOwner(image, users.lookupPrincipalByName(USER));
        Files.setOwner(mount, users.lookupPrincipalByName(USER));
        Files.setPosixFilePermissions(image, PosixFilePermissions.fromString("rw-------"));

        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        server = asUser(javaBin, "-Xmx256m", "-Djava.io.tmpdir=" + dir, "-cp", readableClassPath(),
                UserExport.class.getName(), transport, image.toString(), mount.toString());
        BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
        String ready = awaitLine(out, 60);
        assertTrue(ready.startsWith("READY " + transport), "as " + USER + ": " + ready + drain(out));
        assertTrue(ready.contains("allow_other false"), ready);

        // the mount is nobody's: in the mount table, owned by nobody, a file only nobody may open
        MountTable.Entry e = MountTable.find(mount).orElseThrow(() -> new AssertionError("nothing mounted at " + mount));
        assertEquals(0, e.major(), e.toString());
        String info = Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .filter(l -> l.contains(" " + mount + " ")).findFirst().orElseThrow();
        assertTrue(info.contains("fuse.blockfuse") && info.contains("user_id=65534"), info);
        RealExports.Result denied = RealExports.run(20, "dd", "if=" + mount, "of=/dev/null", "bs=4096", "count=1");
        assertNotEquals(0, denied.exit(), "root got into nobody's mount without allow_other: " + denied.output());

        // nobody reads the seed through the mount, then writes and verifies with fio
        RealExports.Result cmp = runAsUser(60, "cmp", "-n", Integer.toString(8 * MIB), mount.toString(), image.toString());
        assertEquals(0, cmp.exit(), "the mount shows the image: " + cmp.output());
        RealExports.Result fio = runAsUser(120, "fio", "--name=user", "--filename=" + mount, "--rw=randwrite", "--bs=4k",
                "--direct=1", "--ioengine=libaio", "--iodepth=8", "--numjobs=2", "--size=8M", "--offset_increment=8M",
                "--verify=crc32c", "--verify_state_save=0", "--group_reporting", "--output-format=terse");
        assertEquals(0, fio.exit(), fio.output());

        // unmounted through fusermount3 -u when the export closes
        server.getOutputStream().close();
        String last = awaitLine(out, 30);
        assertTrue(last.startsWith("UNMOUNTED served "), last + drain(out));
        long served = Long.parseLong(last.substring("UNMOUNTED served ".length()));
        // fio's 4,096 writes went through the transport's own queues (for io_uring: the rings, unprivileged)
        assertTrue(served >= 4096, transport + " queues served only " + served + " requests");
        assertTrue(server.waitFor(30, TimeUnit.SECONDS));
        assertFalse(MountTable.find(mount).isPresent(), "still mounted after the export closed");
        // fio's writes reached nobody's image: its first block is no longer the seed
        byte[] head = new byte[4096];
        try (var in = Files.newInputStream(image)) {
            assertEquals(4096, in.readNBytes(head, 0, 4096));
        }
        assertFalse(java.util.Arrays.equals(head, java.util.Arrays.copyOf(seed, 4096)), "fio's data is in the image");
    }

    private static String awaitLine(BufferedReader out, int seconds) throws Exception {
        var f = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try {
                String l;
                while ((l = out.readLine()) != null) {
                    if (l.startsWith("READY") || l.startsWith("FAILED") || l.startsWith("UNAVAILABLE")
                            || l.startsWith("UNMOUNTED") || l.startsWith("HALTED")) {
                        return l;
                    }
                }
                return "EOF";
            } catch (IOException ex) {
                return ex.toString();
            }
        });
        return f.get(seconds, TimeUnit.SECONDS);
    }

    private static String drain(BufferedReader out) {
        StringBuilder sb = new StringBuilder();
        try {
            while (out.ready()) {
                sb.append('\n').append(out.readLine());
            }
        } catch (IOException ignored) {
            // best effort, for the failure message
        }
        return sb.toString();
    }
}
