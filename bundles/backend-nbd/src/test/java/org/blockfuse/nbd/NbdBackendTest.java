package org.blockfuse.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;
import org.blockfuse.nativeio.NativeException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The nbd backend against real servers started here: qemu-nbd (raw and qcow2 files) and nbdkit
 * (memory, file, sparse-random; its error, delay and blocksize-policy filters). Bytes are checked
 * against the served file, allocation against {@code qemu-img map}, failures by killing and
 * restarting the server.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class NbdBackendTest {
    private static final int MIB = 1 << 20;
    @TempDir
    Path dir;

    private static BlockBackend open(String uri, boolean writable, String... options) throws IOException {
        return NbdServer.open(uri, writable, options);
    }

    private static byte[] read(BlockBackend b, long offset, int n) throws IOException {
        ByteBuffer dst = ByteBuffer.allocateDirect(n);
        b.read(offset, dst);
        byte[] out = new byte[n];
        dst.get(0, out);
        return out;
    }

    private static void write(BlockBackend b, long offset, byte[] data) throws IOException {
        b.write(offset, ByteBuffer.wrap(data));
    }

    private Path randomRaw(String name, int bytes, long seed) throws IOException {
        byte[] data = new byte[bytes];
        new Random(seed).nextBytes(data);
        return Files.write(dir.resolve(name), data);
    }

    private static String run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), String.join(" ", command) + " hung");
        assertEquals(0, p.exitValue(), String.join(" ", command) + ": " + out);
        return out;
    }

    @Test
    void qemuNbdRawFileReadsAndWritesExactly() throws Exception {
        Path image = randomRaw("disk.raw", 8 * MIB, 1);
        try (NbdServer s = NbdServer.qemuNbd(dir, "--format=raw", "--cache=none", image.toString());
                BlockBackend b = open(s.uri(), true)) {
            assertEquals(8 * MIB, b.size());
            byte[] want = Files.readAllBytes(image);
            assertArrayEquals(want, read(b, 0, 8 * MIB), "the whole served file");
            assertArrayEquals(Arrays.copyOfRange(want, 4097, 4097 + 1000), read(b, 4097, 1000), "an unaligned read");
            byte[] data = new byte[3 * MIB + 17];
            new Random(2).nextBytes(data);
            write(b, 1 * MIB + 5, data);
            b.flush();
            byte[] now = Files.readAllBytes(image);
            assertArrayEquals(data, Arrays.copyOfRange(now, MIB + 5, MIB + 5 + data.length), "the write reached the file");
            assertArrayEquals(Arrays.copyOfRange(want, 0, MIB + 5), Arrays.copyOfRange(now, 0, MIB + 5), "bytes before it kept");
        }
    }

    @Test
    void qcow2ServedByQemuNbdMatchesQemuImgConvertAndMap() throws Exception {
        Path raw = dir.resolve("src.raw");
        run("qemu-img", "create", "-f", "raw", raw.toString(), "16M");
        byte[] data = new byte[MIB];
        new Random(3).nextBytes(data);
        try (var f = java.nio.channels.FileChannel.open(raw, java.nio.file.StandardOpenOption.WRITE)) {
            f.write(ByteBuffer.wrap(data), 2 * MIB); // data at 2 MiB and 9 MiB, holes elsewhere
            f.write(ByteBuffer.wrap(data), 9 * MIB);
        }
        Path qcow2 = dir.resolve("disk.qcow2");
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), qcow2.toString());
        try (NbdServer s = NbdServer.qemuNbd(dir, "--format=qcow2", "--read-only", "--allocation-depth", "--shared=8",
                qcow2.toString());
                BlockBackend b = open(s.uri(), false)) {
            assertFalse(b.writable());
            assertArrayEquals(Files.readAllBytes(raw), read(b, 0, 16 * MIB), "qcow2 bytes as qemu-img convert made them");
            // the data extents qemu-img map reports for the served image, and ours (it takes a 5th client slot)
            List<long[]> want = new ArrayList<>();
            Matcher m = Pattern.compile("\"start\": (\\d+), \"length\": (\\d+),[^}]*\"data\": (true|false)")
                    .matcher(run("qemu-img", "map", "--output=json", s.uri()));
            while (m.find()) {
                if (m.group(3).equals("true")) {
                    want.add(new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2))});
                }
            }
            assertEquals(List.of("2097152+1048576", "9437184+1048576"), want.stream().map(e -> e[0] + "+" + e[1]).toList());
            List<String> ours = new ArrayList<>();
            for (long pos = 0; pos < b.size();) {
                BlockBackend.Extent e = b.extentAt(pos);
                if (e.data()) {
                    ours.add(e.offset() + "+" + e.length());
                }
                pos = e.end();
            }
            assertEquals(want.stream().map(e -> e[0] + "+" + e[1]).toList(), ours, "extents from base:allocation");
            assertEquals(2L * MIB, b.allocatedBytes());
            assertThrows(IOException.class, () -> write(b, 0, new byte[512]), "a read-only export refuses writes");
        }
    }

    @Test
    void readOnlyServerRefusesAWritableExport() throws Exception {
        Path image = randomRaw("ro.raw", MIB, 4);
        try (NbdServer s = NbdServer.qemuNbd(dir, "--format=raw", "--read-only", image.toString())) {
            ImageException e = assertThrows(ImageException.class, () -> open(s.uri(), true));
            assertTrue(e.getMessage().contains("read-only; export it without --writable"), e.getMessage());
            try (BlockBackend b = open(s.uri(), false)) {
                assertArrayEquals(Files.readAllBytes(image), read(b, 0, MIB));
            }
        }
    }

    @Test
    void manyThreadsOverSeveralConnectionsKeepEveryByte() throws Exception {
        try (NbdServer s = NbdServer.nbdkitTcp(dir, "memory", "64M");
                BlockBackend b = open(s.uri(), true, "connections", "4")) {
            assertTrue(b.describeConnection().contains("4 of 4 connections up"), b.describeConnection());
            int threads = 16;
            int block = 64 * 1024;
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int id = t;
                    done.add(pool.submit(() -> {
                        Random r = new Random(id);
                        long base = (long) id * 4 * MIB; // each thread its own region
                        for (int i = 0; i < 200; i++) {
                            byte[] d = new byte[block];
                            r.nextBytes(d);
                            long at = base + (long) r.nextInt(4 * MIB / block) * block;
                            write(b, at, d);
                            assertArrayEquals(d, read(b, at, block), "thread " + id + " at " + at);
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) {
                    f.get(100, TimeUnit.SECONDS);
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void serverWithoutMultiConnGetsOneConnection() throws Exception {
        Path image = randomRaw("one.raw", MIB, 5);
        try (NbdServer s = NbdServer.qemuNbd(dir, "--format=raw", "--shared=1", image.toString());
                BlockBackend b = open(s.uri(), true, "connections", "4")) {
            assertTrue(b.describeConnection().contains("1 of 1 connections up"), b.describeConnection());
            assertArrayEquals(Files.readAllBytes(image), read(b, 0, MIB));
        }
    }

    @Test
    void minimumBlockSizeIsHonouredByReadModifyWrite() throws Exception {
        // the server fails (EINVAL) every request that is not 4 KiB aligned or longer than 64 KiB
        try (NbdServer s = NbdServer.nbdkit(dir, "--filter=blocksize-policy", "memory", "8M",
                "blocksize-minimum=4096", "blocksize-preferred=4096", "blocksize-maximum=65536",
                "blocksize-error-policy=error");
                BlockBackend b = open(s.uri(), true)) {
            byte[] model = new byte[8 * MIB];
            Random r = new Random(6);
            for (int i = 0; i < 300; i++) {
                int len = 1 + r.nextInt(200_000);
                int at = r.nextInt(model.length - len);
                byte[] d = new byte[len];
                r.nextBytes(d);
                write(b, at, d);
                System.arraycopy(d, 0, model, at, len);
                int rl = 1 + r.nextInt(150_000);
                int ra = r.nextInt(model.length - rl);
                assertArrayEquals(Arrays.copyOfRange(model, ra, ra + rl), read(b, ra, rl), "read " + ra + "+" + rl);
            }
            b.writeZeroes(1000, 10_000);
            Arrays.fill(model, 1000, 11_000, (byte) 0);
            b.discard(70_000, 200_001);
            Arrays.fill(model, 70_000, 270_001, (byte) 0);
            assertArrayEquals(model, read(b, 0, model.length), "everything, after zeroing unaligned ranges");
        }
    }

    @Test
    void sparseRandomMapAndHolesMatchTheServer() throws Exception {
        try (NbdServer s = NbdServer.nbdkit(dir, "sparse-random", "64M", "seed=7");
                BlockBackend b = open(s.uri(), false)) {
            Path copy = dir.resolve("copy.raw");
            run("qemu-img", "convert", "-f", "raw", "-O", "raw", s.uri(), copy.toString());
            byte[] want = Files.readAllBytes(copy);
            assertArrayEquals(want, read(b, 0, want.length), "every byte as qemu-img reads it");
            long data = 0;
            for (long pos = 0; pos < b.size();) {
                BlockBackend.Extent e = b.extentAt(pos);
                if (!e.data()) { // a hole reads as zeros
                    for (long i = e.offset(); i < e.end(); i++) {
                        assertEquals(0, want[(int) i], "hole byte " + i);
                    }
                } else {
                    data += e.length();
                }
                pos = e.end();
            }
            assertTrue(data > 0 && data < b.size(), "sparse-random has both data and holes: " + data);
            assertEquals(data, b.allocatedBytes());
        }
    }

    @Test
    void serverErrorsAreEioAndTheConnectionStays() throws Exception {
        Path trigger = dir.resolve("fail-now");
        try (NbdServer s = NbdServer.nbdkit(dir, "--filter=error", "memory", "4M", "error=EIO", "error-rate=100%",
                "error-file=" + trigger);
                BlockBackend b = open(s.uri(), true, "connections", "1")) {
            write(b, 0, new byte[] {1, 2, 3});
            Files.createFile(trigger);
            IOException e = assertThrows(IOException.class, () -> read(b, 0, 4096));
            assertTrue(e.getMessage().contains("the server answered EIO"), e.getMessage());
            assertThrows(IOException.class, () -> write(b, 0, new byte[4096]));
            Files.delete(trigger);
            assertArrayEquals(new byte[] {1, 2, 3}, read(b, 0, 3), "the failed write changed nothing");
            assertTrue(b.describeConnection().contains("1 of 1 connections up, ") == false
                    && b.describeConnection().contains("1 of 1 connections up"), "no reconnect: " + b.describeConnection());
        }
    }

    @Test
    void enospcFromTheServerReachesTheClientAsEnospc() throws Exception {
        Path trigger = dir.resolve("full");
        try (NbdServer s = NbdServer.nbdkit(dir, "--filter=error", "memory", "4M", "error=ENOSPC",
                "error-pwrite-rate=100%", "error-file=" + trigger);
                BlockBackend b = open(s.uri(), true)) {
            Files.createFile(trigger);
            NativeException e = assertThrows(NativeException.class, () -> write(b, 0, new byte[4096]));
            assertEquals(org.blockfuse.nativeio.Errno.ENOSPC, e.errno());
        }
    }

    @Test
    void killedServerComesBackAndWaitingRequestsComplete() throws Exception {
        Path image = randomRaw("file.raw", 4 * MIB, 8);
        try (NbdServer s = NbdServer.nbdkit(dir, "file", image.toString());
                BlockBackend b = open(s.uri(), true, "reconnect-timeout", "30")) {
            byte[] d = new byte[MIB];
            new Random(9).nextBytes(d);
            write(b, 0, d);
            s.kill();
            ExecutorService one = Executors.newSingleThreadExecutor();
            try {
                byte[] d2 = new byte[MIB];
                new Random(10).nextBytes(d2);
                Future<byte[]> pending = one.submit(() -> {
                    write(b, MIB, d2); // waits for the server
                    return read(b, 0, 2 * MIB);
                });
                waitUntil(() -> b.describeConnection().contains("requests waiting"), "the write waits: " );
                assertFalse(pending.isDone());
                s.start();
                byte[] got = pending.get(30, TimeUnit.SECONDS);
                assertArrayEquals(d, Arrays.copyOfRange(got, 0, MIB));
                assertArrayEquals(d2, Arrays.copyOfRange(got, MIB, 2 * MIB));
                assertArrayEquals(d2, Arrays.copyOfRange(Files.readAllBytes(image), MIB, 2 * MIB), "in the served file");
                assertTrue(b.describeConnection().matches(".*: (\\d+) of \\1 connections up, \\d+ reconnects"),
                        b.describeConnection());
            } finally {
                one.shutdownNow();
            }
        }
    }

    @Test
    void serverAwayPastTheWindowGivesEioThenRecovers() throws Exception {
        Path image = randomRaw("away.raw", MIB, 11);
        try (NbdServer s = NbdServer.nbdkit(dir, "file", image.toString());
                BlockBackend b = open(s.uri(), true, "reconnect-timeout", "1", "connect-timeout", "1")) {
            s.kill();
            long t0 = System.nanoTime();
            IOException e = assertThrows(IOException.class, () -> read(b, 0, 4096));
            long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(e.getMessage().contains("did not come back within reconnect-timeout")
                    || e.getMessage().contains("unreachable for more than reconnect-timeout"), e.getMessage());
            assertTrue(waited < 5000, "EIO within the window and a tick, not " + waited + " ms");
            assertThrows(IOException.class, () -> read(b, 0, 4096), "still away: fails at once");
            s.start();
            waitUntil(() -> b.describeConnection().matches(".*: (\\d+) of \\1 connections up, \\d+ reconnects"),
                    "reconnected");
            assertArrayEquals(Arrays.copyOfRange(Files.readAllBytes(image), 0, 4096), read(b, 0, 4096));
        }
    }

    @Test
    void anotherExportOnTheSameSocketIsNotUsed() throws Exception {
        Path socketDir = Files.createDirectory(dir.resolve("s"));
        NbdServer first = NbdServer.nbdkit(socketDir, "memory", "4M");
        String uri = first.uri();
        try (BlockBackend b = open(uri, true, "reconnect-timeout", "2")) {
            write(b, 0, new byte[] {7});
            first.kill();
            // a different disk (8 MiB) now answers on the same socket
            Path socket = Path.of(uri.substring(uri.indexOf("socket=") + 7));
            Process other = new ProcessBuilder("nbdkit", "-f", "--exit-with-parent", "-U", socket.toString(), "memory", "8M")
                    .redirectErrorStream(true).redirectOutput(dir.resolve("other.log").toFile()).start();
            try {
                IOException e = assertThrows(IOException.class, () -> read(b, 0, 1));
                assertTrue(e.getMessage().contains("reconnect-timeout"), e.getMessage());
                assertTrue(b.describeConnection().contains("not the export this one was"), b.describeConnection());
            } finally {
                other.destroyForcibly();
                other.waitFor(10, TimeUnit.SECONDS);
            }
        } finally {
            first.close();
        }
    }

    @Test
    void unansweredRequestsAreRetriedThenFailWithinTheirBound() throws Exception {
        Path trigger = dir.resolve("slow");
        // every read takes 3 s while the file exists; request-timeout is 1 s, reconnect-timeout 2 s
        try (NbdServer s = NbdServer.nbdkit(dir, "--filter=delay", "memory", "4M", "rdelay=3");
                BlockBackend b = open(s.uri(), true, "request-timeout", "1", "reconnect-timeout", "2")) {
            long t0 = System.nanoTime();
            IOException e = assertThrows(IOException.class, () -> read(b, 0, 4096));
            long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(waited >= 2000 && waited < 10_000, "bounded by request- and reconnect-timeout: " + waited + " ms");
            assertTrue(e.getMessage().contains("reconnect-timeout"), e.getMessage());
            write(b, 0, new byte[] {5}); // writes are not delayed: the export stays usable
        }
        assertFalse(Files.exists(trigger));
    }

    @Test
    void closingWhileAReconnectionHangsInItsHandshakeIsQuick() throws Exception {
        NbdServer s = NbdServer.nbdkit(dir, "memory", "4M");
        String uri = s.uri();
        Path socket = Path.of(uri.substring(uri.indexOf("socket=") + 7));
        BlockBackend b = open(uri, true, "connect-timeout", "60", "connections", "1");
        s.kill();
        // something now listens on the socket but never speaks: the reconnection waits in its handshake
        try (var silent = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            silent.bind(java.net.UnixDomainSocketAddress.of(socket));
            waitUntil(() -> b.describeConnection().contains("down"), "the connection is down");
            var client = silent.accept(); // the reconnection is now waiting for the greeting
            long t0 = System.nanoTime();
            b.close();
            long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(took < 3000, "close took " + took + " ms with a 60 s connect-timeout");
            client.close();
        } finally {
            Files.deleteIfExists(socket);
        }
    }

    @Test
    void handshakeThatNeverComesTimesOut() throws Exception {
        try (var server = java.nio.channels.ServerSocketChannel.open()) {
            server.bind(new java.net.InetSocketAddress("127.0.0.1", 0));
            int port = ((java.net.InetSocketAddress) server.getLocalAddress()).getPort();
            long t0 = System.nanoTime();
            ImageException e = assertThrows(ImageException.class,
                    () -> open("nbd://127.0.0.1:" + port + "/x", false, "connect-timeout", "1"));
            long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(e.getMessage().contains("connect-timeout"), e.getMessage());
            assertTrue(waited < 4000, waited + " ms");
        }
    }

    @Test
    void unknownExportAndAbsentServerAreOneLine() throws Exception {
        try (NbdServer s = NbdServer.qemuNbd(dir, "--format=raw", "--export-name=disk", randomRaw("n.raw", MIB, 12).toString())) {
            ImageException e = assertThrows(ImageException.class, () -> open(s.uri("other"), false));
            assertTrue(e.getMessage().contains("refused export 'other'"), e.getMessage());
            try (BlockBackend b = open(s.uri("disk"), false)) {
                assertEquals(MIB, b.size());
            }
        }
        ImageException e = assertThrows(ImageException.class, () -> open("nbd+unix:///x?socket=" + dir.resolve("none"), false));
        assertTrue(e.getMessage().startsWith("nbd server unix:") && e.getMessage().contains("cannot be reached"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    interface Condition {
        boolean holds() throws Exception;
    }

    static void waitUntil(Condition c, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!c.holds()) {
            if (System.nanoTime() > deadline) {
                fail("not within 30 s: " + what);
            }
            Thread.sleep(20);
        }
    }
}
