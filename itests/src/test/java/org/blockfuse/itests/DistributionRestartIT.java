package org.blockfuse.itests;

import static org.junit.Assert.*;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * The distribution as an operator runs it: bin/start, bin/client, bin/stop. Exports persist across
 * a restart, and after a crash (kill -9) the stale mount is cleared and the export comes back.
 */
public class DistributionRestartIT {
    private Path home;
    private Path work;
    private String sshPort;

    @Before
    public void unpack() throws Exception {
        work = Path.of(System.getProperty("blockfuse.work")).resolve("dist-restart");
        deleteTree(work);
        Files.createDirectories(work);
        sh(work, "tar", "xzf", System.getProperty("blockfuse.dist"));
        home = work.resolve("blockfuse-dist-0.1.0-SNAPSHOT");
        sshPort = Integer.toString(freePort());
        // private ports and a private demo mountpoint, so a developer's running demo is untouched
        replace(home.resolve("etc/org.apache.karaf.shell.cfg"), "sshPort = 8101", "sshPort = " + sshPort);
        replace(home.resolve("etc/org.apache.karaf.management.cfg"), "rmiRegistryPort = 1099", "rmiRegistryPort = " + freePort());
        replace(home.resolve("etc/org.apache.karaf.management.cfg"), "rmiServerPort = 44444", "rmiServerPort = " + freePort());
        replace(home.resolve("etc/org.blockfuse.export-demo.cfg"), "/tmp/blockfuse-demo.img", work.resolve("demo.img").toString());
    }

    @After
    public void stopEverything() throws Exception {
        Path pidFile = home.resolve("karaf.pid");
        if (Files.exists(pidFile)) {
            String pid = Files.readString(pidFile).trim();
            sh(home, "bin/stop");
            waitForExit(pid, 60);
            if (alive(pid)) {
                sh(home, "kill", "-9", pid);
            }
        }
        for (String mp : List.of("demo.img", "persist.img")) {
            Path p = work.resolve(mp);
            if (mounted(p)) {
                sh(work, "umount", "-l", p.toString());
            }
        }
    }

    @Test
    public void exportsComeBackAfterARestartAndAfterACrash() throws Exception {
        Path image = work.resolve("persist.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(32 << 20);
        }
        Path mount = work.resolve("persist.img");
        start();
        client("blockfuse:export-add --writable persist " + image + " " + mount);
        assertTrue(Files.exists(home.resolve("etc/org.blockfuse.export-persist.cfg")));
        assertTrue(mounted(mount));
        Files.write(mount, "before restart".getBytes(StandardCharsets.US_ASCII), java.nio.file.StandardOpenOption.WRITE);

        // clean restart: unmounted while down, back after start
        String pid = Files.readString(home.resolve("karaf.pid")).trim();
        sh(home, "bin/stop");
        waitForExit(pid, 60);
        assertFalse("nothing stays mounted after shutdown", mounted(mount));
        assertFalse("the created mountpoint is removed", Files.exists(mount));
        start();
        awaitMounted(mount);
        assertEquals("before restart", new String(Files.readAllBytes(mount), 0, 14, StandardCharsets.US_ASCII));

        // crash: the mount goes stale ("Transport endpoint is not connected") and must be cleared on start
        pid = Files.readString(home.resolve("karaf.pid")).trim();
        sh(home, "kill", "-9", pid);
        waitForExit(pid, 30);
        assertTrue("a crashed server leaves its mount behind", mounted(mount));
        Files.deleteIfExists(home.resolve("karaf.pid"));
        start();
        awaitMounted(mount);
        assertEquals("before restart", new String(Files.readAllBytes(mount), 0, 14, StandardCharsets.US_ASCII));
        String log = Files.readString(home.resolve("data/log/karaf.log"));
        assertTrue("the stale mount is logged", log.contains("cleared a stale FUSE mount at " + mount));

        client("blockfuse:export-remove persist");
        assertFalse(mounted(mount));
        assertFalse(Files.exists(home.resolve("etc/org.blockfuse.export-persist.cfg")));
    }

    private void start() throws Exception {
        sh(home, "bin/start");
        client("blockfuse:export-list"); // retried by the client until the shell is up
        awaitMounted(work.resolve("demo.img"));
    }

    private String client(String command) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bin/client", "-b", "-u", "karaf", "-p", "karaf", "-a", sshPort, "-r", "90", "-d", "1")
                .directory(home.toFile()).redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        p.getOutputStream().write((command + "\n").getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue("client timed out", p.waitFor(180, TimeUnit.SECONDS));
        if (p.exitValue() != 0) {
            fail(command + " -> " + out + "\n" + threadDump());
        }
        assertFalse(command + " -> " + out, out.contains("Error executing command"));
        return out;
    }

    /** A hung Karaf explains itself: its threads and the end of its log. */
    private String threadDump() {
        try {
            String pid = Files.readString(home.resolve("karaf.pid")).trim();
            Process j = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jstack").toString(), pid)
                    .redirectErrorStream(true).start();
            String dump = new String(j.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            List<String> log = Files.readAllLines(home.resolve("data/log/karaf.log"));
            return dump + "\n--- karaf.log tail ---\n" + String.join("\n", log.subList(Math.max(0, log.size() - 40), log.size()));
        } catch (IOException e) {
            return "(no thread dump: " + e + ")";
        }
    }

    private void awaitMounted(Path p) throws Exception {
        long deadline = System.currentTimeMillis() + 90_000;
        while (!mounted(p) || !Files.isRegularFile(p)) {
            if (System.currentTimeMillis() > deadline) {
                fail(p + " was not mounted in time");
            }
            Thread.sleep(200);
        }
    }

    private static boolean mounted(Path p) throws IOException {
        String want = " " + p.toAbsolutePath() + " ";
        return Files.readAllLines(Path.of("/proc/self/mounts")).stream().anyMatch(l -> l.contains(want));
    }

    private static boolean alive(String pid) {
        return Files.exists(Path.of("/proc", pid));
    }

    private static void waitForExit(String pid, int seconds) throws InterruptedException {
        for (int i = 0; i < seconds * 10 && alive(pid); i++) {
            Thread.sleep(100);
        }
    }

    private static void sh(Path dir, String... cmd) throws Exception {
        // stdin from /dev/null: Karaf started by bin/start inherits it and must not hold our pipe
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(String.join(" ", cmd) + ": " + out, 0, p.exitValue());
    }

    private static void replace(Path file, String from, String to) throws IOException {
        String s = Files.readString(file);
        assertTrue(file + " has no '" + from + "'", s.contains(from));
        Files.writeString(file, s.replace(from, to));
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (Files.exists(p)) {
            try (var walk = Files.walk(p)) {
                walk.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
            }
        }
    }
}
