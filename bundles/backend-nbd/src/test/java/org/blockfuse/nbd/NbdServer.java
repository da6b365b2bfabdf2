package org.blockfuse.nbd;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real NBD server for a test: Debian's nbdkit or qemu-nbd, on a Unix socket in the test's folder
 * (or a loopback TCP port), started and stopped by the test. nbdkit is told to exit with its parent
 * and qemu-nbd is killed by {@link #close()} (or, after a test that timed out, when the test JVM
 * exits), so a failing test leaves no server behind. A missing
 * tool fails the test (./run-tests installs both).
 */
public final class NbdServer implements AutoCloseable {
    /**
     * Servers still running, killed when the test JVM exits: a test that times out never reaches
     * its close(), and qemu-nbd (unlike nbdkit) has no --exit-with-parent.
     */
    private static final java.util.Set<Process> RUNNING = java.util.concurrent.ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> RUNNING.forEach(Process::destroyForcibly)));
    }

    private final List<String> command;
    private final Path socket;
    private final int port;
    private final Path log;
    private Process process;

    private NbdServer(List<String> command, Path socket, int port, Path log) {
        this.command = command;
        this.socket = socket;
        this.port = port;
        this.log = log;
    }

    /** nbdkit on a Unix socket: {@code args} are filters, the plugin and its parameters. */
    public static NbdServer nbdkit(Path dir, String... args) throws IOException {
        Path socket = dir.resolve("nbdkit-" + System.nanoTime() + ".sock");
        List<String> c = new ArrayList<>(List.of(tool("nbdkit"), "-f", "--exit-with-parent", "-U", socket.toString()));
        c.addAll(List.of(args));
        return new NbdServer(c, socket, 0, dir.resolve(socket.getFileName() + ".log")).start();
    }

    /** nbdkit on a loopback TCP port. */
    public static NbdServer nbdkitTcp(Path dir, String... args) throws IOException {
        int port = freePort();
        List<String> c = new ArrayList<>(List.of(tool("nbdkit"), "-f", "--exit-with-parent", "-i", "127.0.0.1",
                "-p", Integer.toString(port)));
        c.addAll(List.of(args));
        return new NbdServer(c, null, port, dir.resolve("nbdkit-" + port + ".log")).start();
    }

    /** qemu-nbd on a Unix socket, persistent (it stays up between clients): {@code args} end with the image. */
    public static NbdServer qemuNbd(Path dir, String... args) throws IOException {
        Path socket = dir.resolve("qemu-nbd-" + System.nanoTime() + ".sock");
        List<String> c = new ArrayList<>(List.of(tool("qemu-nbd"), "--persistent", "--socket=" + socket));
        c.addAll(List.of(args));
        return new NbdServer(c, socket, 0, dir.resolve(socket.getFileName() + ".log")).start();
    }

    /** qemu-nbd on a loopback TCP port, persistent: {@code args} end with the image. */
    public static NbdServer qemuNbdTcp(Path dir, String... args) throws IOException {
        int port = freePort();
        List<String> c = new ArrayList<>(List.of(tool("qemu-nbd"), "--persistent", "--bind=127.0.0.1",
                "--port=" + port));
        c.addAll(List.of(args));
        return new NbdServer(c, null, port, dir.resolve("qemu-nbd-" + port + ".log")).start();
    }

    public int port() {
        return port;
    }

    /** The URI of export {@code name} on this server. */
    public String uri(String name) {
        return socket != null ? "nbd+unix:///" + name + "?socket=" + socket : "nbd://127.0.0.1:" + port + "/" + name;
    }

    public String uri() {
        return uri("");
    }

    public long pid() {
        return process.pid();
    }

    /** Kills the server at once (SIGKILL): its clients see their connections break. */
    public void kill() throws IOException {
        if (process != null) {
            RUNNING.remove(process);
            process.destroyForcibly();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) {
                    fail("the NBD server " + process.pid() + " did not die");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            process = null;
        }
        if (socket != null) {
            Files.deleteIfExists(socket);
        }
    }

    /** Starts the same server again, on the same socket or port. */
    public NbdServer start() throws IOException {
        if (socket != null) {
            Files.deleteIfExists(socket);
        }
        process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
        RUNNING.add(process);
        awaitListening();
        return this;
    }

    /** Polls until a connection succeeds (bounded), so the test never sleeps a fixed time. */
    private void awaitListening() throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        SocketAddress a = socket != null ? UnixDomainSocketAddress.of(socket) : new InetSocketAddress("127.0.0.1", port);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                fail(String.join(" ", command) + " exited with " + process.exitValue() + ": " + Files.readString(log));
            }
            if (socket == null || Files.exists(socket)) {
                try (SocketChannel ch = socket != null ? SocketChannel.open(StandardProtocolFamily.UNIX) : SocketChannel.open()) {
                    ch.connect(a);
                    return;
                } catch (IOException notYet) {
                    // not listening yet
                }
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted");
            }
        }
        close();
        fail(String.join(" ", command) + " did not listen within 15 s: " + Files.readString(log));
    }

    @Override
    public void close() throws IOException {
        kill();
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** Opens {@code uri} with the nbd factory; {@code options} are key, value, key, value, ... */
    public static org.blockfuse.api.BlockBackend open(String uri, boolean writable, String... options) throws IOException {
        java.util.Map<String, String> o = new java.util.HashMap<>();
        for (int i = 0; i < options.length; i += 2) {
            o.put(options[i], options[i + 1]);
        }
        return new NbdBackendFactory().open(new org.blockfuse.api.BackendRequest(uri, writable, o));
    }

    /** The tool's path; fails (not skips) when it is missing. */
    public static String tool(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(dir, name))) {
                return Path.of(dir, name).toString();
            }
        }
        fail(name + " is not installed (./run-tests installs it)");
        return name;
    }
}
