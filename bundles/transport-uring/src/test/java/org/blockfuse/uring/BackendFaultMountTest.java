package org.blockfuse.uring;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.MountTable;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.uring.FaultyBackend.Fault;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Fault suite, backend I/O errors (issue 8, 3.3), on both transports through a real mount: a raw
 * image behind {@link FaultyBackend} fails reads in one range and writes in another. Clients get
 * EIO for exactly those ranges, every other byte reads and writes exactly, the export stays up, each
 * failed request is counted once in {@code ExportHandler.ioErrors()}, and 10,000 failures log only a
 * handful of lines.
 */
class BackendFaultMountTest {
    private static final int KIB = 1024;
    private static final int MIB = 1 << 20;
    private static final long SIZE = 16 * MIB;
    private static final int CHUNK = 64 * KIB;
    /** Reads fail here (writes work): a bad sector the disk can still overwrite. */
    private static final Fault BAD_READS = Fault.failReads(4 * MIB, 64 * KIB);
    /** Writes fail here (reads work): a worn-out, read-only area. */
    private static final Fault BAD_WRITES = Fault.failWrites(8 * MIB, 64 * KIB);
    private static final int REPEATED_FAILURES = 10_000;
    /** The handler logs the first ten failures, then one per power of two: ~20 lines for 10,000. */
    private static final int MAX_LOG_LINES = 40;

    @TempDir
    Path dir;
    private final RealExports rig = new RealExports();

    @AfterEach
    void unmount() throws Exception {
        rig.close();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {RealExports.LEGACY, RealExports.URING})
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void failingRangesGetEioAndEverythingElseKeepsWorking(String transport) throws Exception {
        RealExports.transport(transport);
        RealExports.requireTool("dd");
        byte[] pattern = new byte[(int) SIZE];
        new Random(83).nextBytes(pattern);
        Path image = Files.write(dir.resolve("faulty.raw"), pattern);
        FaultyBackend faulty = new FaultyBackend(RealExports.raw(image), List.of(BAD_READS, BAD_WRITES));
        String name = "bad-" + transport;
        FuseExport e = rig.start(name, faulty, dir.resolve("faulty.img"), false, transport, Map.of());
        Path file = e.mountPoint();
        long expectedFailures = 0;

        try (RealExports.DirectFile f = new RealExports.DirectFile(file, MIB)) {
            // every 64 KiB of the image: EIO where reads are bad, the exact bytes everywhere else
            byte[] got = new byte[CHUNK];
            for (long off = 0; off < SIZE; off += CHUNK) {
                long n = f.read(off, got, CHUNK);
                if (BAD_READS.hits(off, CHUNK, false)) {
                    assertEquals(-Errno.EIO, n, "read at " + off + " in the failing range");
                    expectedFailures++;
                } else {
                    assertEquals(CHUNK, n, "read at " + off);
                    assertArrayEquals(Arrays.copyOfRange(pattern, (int) off, (int) off + CHUNK), got, "bytes at " + off);
                }
            }
            // the edges: the 4 KiB either side are fine, the first and last 4 KiB inside fail
            byte[] page = new byte[4 * KIB];
            long start = BAD_READS.offset();
            long end = start + BAD_READS.length();
            assertEquals(4 * KIB, f.read(start - 4 * KIB, page, 4 * KIB));
            assertArrayEquals(Arrays.copyOfRange(pattern, (int) start - 4 * KIB, (int) start), page);
            assertEquals(4 * KIB, f.read(end, page, 4 * KIB));
            assertArrayEquals(Arrays.copyOfRange(pattern, (int) end, (int) end + 4 * KIB), page);
            assertEquals(-Errno.EIO, f.read(start, page, 4 * KIB));
            assertEquals(-Errno.EIO, f.read(end - 4 * KIB, page, 4 * KIB));
            expectedFailures += 2;

            // what a user sees
            RealExports.Result dd = RealExports.run(30, "dd", "if=" + file, "of=/dev/null", "bs=4k",
                    "skip=" + (start / (4 * KIB)), "count=1", "iflag=direct");
            assertNotEquals(0, dd.exit(), dd.output());
            assertTrue(dd.output().contains("Input/output error"), dd.output());
            expectedFailures++;

            // writes: EIO in their failing range, which keeps its old bytes and still reads
            long badWrite = BAD_WRITES.offset() + 8 * KIB;
            byte[] fresh = new byte[4 * KIB];
            new Random(7).nextBytes(fresh);
            assertEquals(-Errno.EIO, f.write(badWrite, fresh));
            expectedFailures++;
            dd = RealExports.run(30, "dd", "if=/dev/zero", "of=" + file, "bs=4k", "seek=" + (BAD_WRITES.offset() / (4 * KIB)),
                    "count=1", "oflag=direct", "conv=notrunc");
            assertNotEquals(0, dd.exit(), dd.output());
            assertTrue(dd.output().contains("Input/output error"), dd.output());
            expectedFailures++;
            assertEquals(CHUNK, f.read(BAD_WRITES.offset(), got, CHUNK));
            assertArrayEquals(Arrays.copyOfRange(pattern, (int) BAD_WRITES.offset(), (int) BAD_WRITES.offset() + CHUNK),
                    got, "a failed write changed nothing");

            // and work elsewhere, right up to the edge (also inside the read-failing range)
            byte[] goodData = new byte[CHUNK];
            new Random(9).nextBytes(goodData);
            long[] goodWrites = {MIB, BAD_WRITES.offset() - CHUNK, BAD_WRITES.offset() + BAD_WRITES.length()};
            for (long off : goodWrites) {
                assertEquals(CHUNK, f.write(off, goodData), "write at " + off);
                System.arraycopy(goodData, 0, pattern, (int) off, CHUNK);
                assertEquals(CHUNK, f.read(off, got, CHUNK));
                assertArrayEquals(goodData, got, "read back at " + off);
            }
            assertEquals(4 * KIB, f.write(start, fresh), "writes into the read-failing range work");
            System.arraycopy(fresh, 0, pattern, (int) start, fresh.length);
            f.fsync();

            // 10,000 failing reads: each one EIO, but no log line each
            long errorsBefore = e.ioErrors();
            String log = capturingStderr(() -> {
                for (int i = 0; i < REPEATED_FAILURES; i++) {
                    long off = start + (i % (BAD_READS.length() / (4 * KIB))) * 4 * KIB;
                    assertEquals(-Errno.EIO, f.read(off, null, 4 * KIB), "failing read #" + i);
                }
            });
            expectedFailures += REPEATED_FAILURES;
            long logged = log.lines().filter(l -> l.contains(name)).count();
            System.out.println(transport + ": " + REPEATED_FAILURES + " failing reads (errors " + errorsBefore + " -> "
                    + e.ioErrors() + ") logged " + logged + " lines");
            assertTrue(logged >= 1, "the failures are logged at all:\n" + log);
            assertTrue(logged <= MAX_LOG_LINES, "rate-limited log, got " + logged + " lines:\n" + log);

            // counted: once per failed request, nothing else
            assertEquals(faulty.injected(), e.ioErrors(), "every failed request counted once");
            assertTrue(faulty.injected() >= expectedFailures, faulty.injected() + " < " + expectedFailures);

            // still up: the same mount answers, the bytes are right, no halt
            assertEquals(List.of(), rig.halts);
            assertTrue(MountTable.find(file).isPresent(), "still mounted");
            assertEquals(SIZE, Files.size(file));
            assertEquals(CHUNK, f.read(0, got, CHUNK));
            assertArrayEquals(Arrays.copyOfRange(pattern, 0, CHUNK), got);
        }
        rig.close(e);
        byte[] onDisk = Files.readAllBytes(image);
        assertTrue(Arrays.equals(pattern, onDisk), "the image holds exactly the writes that succeeded");
    }

    /** Runs {@code body} with System.err copied into the returned text (slf4j-simple writes there). */
    private static String capturingStderr(ThrowingRunnable body) throws Exception {
        PrintStream original = System.err;
        ByteArrayOutputStream copy = new ByteArrayOutputStream();
        OutputStream tee = new OutputStream() {
            @Override
            public synchronized void write(int b) {
                original.write(b);
                copy.write(b);
            }

            @Override
            public synchronized void write(byte[] b, int off, int len) {
                original.write(b, off, len);
                copy.write(b, off, len);
            }
        };
        System.setErr(new PrintStream(tee, true, StandardCharsets.UTF_8));
        try {
            body.run();
        } finally {
            System.err.flush();
            System.setErr(original);
        }
        synchronized (tee) {
            return copy.toString(StandardCharsets.UTF_8);
        }
    }

    private interface ThrowingRunnable {
        void run() throws Exception;
    }
}
