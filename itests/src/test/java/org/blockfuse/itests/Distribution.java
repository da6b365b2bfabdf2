package org.blockfuse.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.io.Reader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The built distribution unpacked into a private folder and driven as an operator drives it:
 * bin/start, bin/client, bin/stop. Private ports (a developer's running demo is untouched); the
 * demo export is mounted inside the unpacked folder. {@link #close()} stops Karaf by its PID and
 * unmounts what is left, whatever the test did.
 */
final class Distribution implements AutoCloseable {
    /** What one bin/client call printed, and its exit code. */
    record Result(int exit, String output) {
        boolean ok() {
            return exit == 0 && !output.contains("Error executing command");
        }
    }

    final Path work;
    final Path home;
    final int sshPort;
    final int rmiRegistryPort;
    final int rmiServerPort;
    private final List<Path> mounts = new ArrayList<>();

    private Distribution(Path work, Path home) throws IOException {
        this.work = work;
        this.home = home;
        this.sshPort = freePort();
        this.rmiRegistryPort = freePort();
        this.rmiServerPort = freePort();
        replace(home.resolve("etc/org.apache.karaf.shell.cfg"), "sshPort = 8101", "sshPort = " + sshPort);
        replace(home.resolve("etc/org.apache.karaf.management.cfg"), "rmiRegistryPort = 1099", "rmiRegistryPort = " + rmiRegistryPort);
        replace(home.resolve("etc/org.apache.karaf.management.cfg"), "rmiServerPort = 44444", "rmiServerPort = " + rmiServerPort);
        unmountOnClose(demoMount());
    }

    /** Unpacks the distribution's tar.gz into a fresh folder {@code name} under the itests' work folder. */
    static Distribution unpack(String name) throws Exception {
        Path work = Path.of(System.getProperty("blockfuse.work")).resolve(name);
        for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
            String mountpoint = line.split(" ")[1];
            if (mountpoint.startsWith(work + "/")) { // left by an earlier run that was killed before its clean-up
                sh(Path.of("/"), "umount", "-l", mountpoint);
            }
        }
        deleteTree(work);
        Files.createDirectories(work);
        sh(work, "tar", "xzf", System.getProperty("blockfuse.dist"));
        try (Stream<Path> dirs = Files.list(work)) {
            return new Distribution(work, dirs.filter(Files::isDirectory).findFirst().orElseThrow());
        }
    }

    Path demoMount() {
        return home.resolve("data/blockfuse/demo.img");
    }

    Path usersFile() {
        return home.resolve("etc/users.properties");
    }

    /** A mount the test makes; {@link #close()} unmounts it if it is still there. */
    void unmountOnClose(Path mountpoint) {
        mounts.add(mountpoint);
    }

    /** bin/start, then waits until bin/client (as root, no user given) answers and the demo export is mounted. */
    void start() throws Exception {
        sh(home, "bin/start");
        client("blockfuse:export-list"); // retried by the client until the shell is up
        awaitMounted(demoMount());
    }

    /** bin/stop, and waits for the JVM to exit. */
    void stop() throws Exception {
        String pid = pid();
        sh(home, "bin/stop");
        waitForExit(pid, 60);
        assertFalse("Karaf (pid " + pid + ") did not stop", alive(pid));
    }

    /** kill -9: the JVM dies at once, leaving its mounts and karaf.pid behind. */
    void crash() throws Exception {
        String pid = pid();
        sh(home, "kill", "-9", pid);
        waitForExit(pid, 30);
        Files.deleteIfExists(home.resolve("karaf.pid")); // a stale one would stop bin/start
    }

    String pid() throws IOException {
        return Files.readString(home.resolve("karaf.pid")).trim();
    }

    /** Runs a command through bin/client as root with no -u/-p (it logs in as the first user); it must succeed. */
    String client(String command) throws Exception {
        Result r = runClient(List.of(), command);
        if (r.exit() != 0) {
            fail(command + " -> " + r.output() + "\n" + threadDump());
        }
        assertTrue(command + " -> " + r.output(), r.ok());
        return r.output();
    }

    /**
     * The transports the running distribution can use (blockfuse:transport-list). Strict, like
     * KarafSupport's: an unavailable transport fails unless -Dblockfuse.tests.lenient=true.
     */
    List<String> transports() throws Exception {
        List<String> names = new ArrayList<>();
        for (String line : client("blockfuse:transport-list --no-format").split("\n")) {
            String[] f = line.trim().split("\\s+", 4); // name, rank, available, reason
            if (f.length < 3 || !(f[2].equals("true") || f[2].equals("false"))) {
                continue; // a header or the client's own output
            }
            if (f[2].equals("true")) {
                names.add(f[0]);
            } else if (!Boolean.getBoolean("blockfuse.tests.lenient")) {
                fail("missing capability: transport " + f[0] + " is unavailable: " + (f.length > 3 ? f[3] : "")
                        + " (run with -Dblockfuse.tests.lenient=true to test only the others)");
            }
        }
        assertFalse("no transport available", names.isEmpty());
        return names;
    }

    /** Runs a command through bin/client as {@code user}; the result may be a failure. */
    Result clientAs(String user, String password, String command) throws Exception {
        return runClient(List.of("-u", user, "-p", password), command);
    }

    private Result runClient(List<String> login, String command) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("bin/client", "-b"));
        cmd.addAll(login);
        cmd.addAll(List.of("-a", Integer.toString(sshPort), "-r", "90", "-d", "1"));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(home.toFile()).redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        p.getOutputStream().write((command + "\n").getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue("client timed out", p.waitFor(180, TimeUnit.SECONDS));
        return new Result(p.exitValue(), out);
    }

    /** etc/users.properties as Karaf reads it (user = password,roles...). */
    Properties users() throws IOException {
        Properties users = new Properties();
        try (Reader r = Files.newBufferedReader(usersFile())) {
            users.load(r);
        }
        return users;
    }

    /** The password bin/setenv generated for the admin user. */
    String adminPassword() throws IOException {
        String entry = users().getProperty("admin");
        assertTrue("etc/users.properties has no admin user", entry != null);
        return entry.split(",")[0].trim();
    }

    /** The addresses the TCP sockets listening on {@code port} are bound to (from /proc/net/tcp and tcp6). */
    static List<InetAddress> listenAddresses(int port) throws IOException {
        List<InetAddress> found = new ArrayList<>();
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            for (String line : Files.readAllLines(Path.of(table))) {
                String[] f = line.trim().split("\\s+");
                if (f.length < 4 || !f[3].equals("0A")) { // header, or not LISTEN
                    continue;
                }
                String[] local = f[1].split(":");
                if (Integer.parseInt(local[1], 16) == port) {
                    found.add(InetAddress.getByAddress(procAddress(local[0])));
                }
            }
        }
        return found;
    }

    /** /proc/net/tcp* print an address as 32-bit words in host (little-endian) byte order. */
    private static byte[] procAddress(String hex) {
        byte[] b = new byte[hex.length() / 2];
        for (int word = 0; word < b.length / 4; word++) {
            for (int i = 0; i < 4; i++) {
                int at = (word * 4 + 3 - i) * 2;
                b[word * 4 + i] = (byte) Integer.parseInt(hex.substring(at, at + 2), 16);
            }
        }
        return b;
    }

    /** A hung Karaf explains itself: its threads and the end of its log. */
    String threadDump() {
        try {
            Process j = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jstack").toString(), pid())
                    .redirectErrorStream(true).start();
            String dump = new String(j.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            return dump + "\n--- karaf.log tail ---\n" + logTail(40);
        } catch (IOException e) {
            return "(no thread dump: " + e + ")";
        }
    }

    String log() throws IOException {
        return Files.readString(home.resolve("data/log/karaf.log"));
    }

    private String logTail(int lines) throws IOException {
        List<String> log = Files.readAllLines(home.resolve("data/log/karaf.log"));
        return String.join("\n", log.subList(Math.max(0, log.size() - lines), log.size()));
    }

    void awaitMounted(Path p) throws Exception {
        long deadline = System.currentTimeMillis() + 90_000;
        while (!mounted(p) || !Files.isRegularFile(p)) {
            if (System.currentTimeMillis() > deadline) {
                fail(p + " was not mounted in time");
            }
            Thread.sleep(200);
        }
    }

    static boolean mounted(Path p) throws IOException {
        String want = " " + p.toAbsolutePath() + " ";
        return Files.readAllLines(Path.of("/proc/self/mounts")).stream().anyMatch(l -> l.contains(want));
    }

    /** Stops Karaf (bin/stop, then kill -9 by PID if it hangs) and unmounts whatever is still mounted. */
    @Override
    public void close() throws Exception {
        Path pidFile = home.resolve("karaf.pid");
        if (Files.exists(pidFile)) {
            String pid = pid();
            if (alive(pid)) {
                try {
                    sh(home, "bin/stop");
                } catch (AssertionError e) {
                    // bin/stop failed: the kill below still ends it
                }
                waitForExit(pid, 60);
                if (alive(pid)) {
                    sh(home, "kill", "-9", pid);
                    waitForExit(pid, 30);
                }
            }
        }
        for (Path p : mounts) {
            if (mounted(p)) {
                sh(work, "umount", "-l", p.toString());
            }
        }
    }

    private static boolean alive(String pid) {
        return Files.exists(Path.of("/proc", pid));
    }

    private static void waitForExit(String pid, int seconds) throws InterruptedException {
        for (int i = 0; i < seconds * 10 && alive(pid); i++) {
            Thread.sleep(100);
        }
    }

    static void sh(Path dir, String... cmd) throws Exception {
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
            try (Stream<Path> walk = Files.walk(p)) {
                walk.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
            }
        }
    }
}
