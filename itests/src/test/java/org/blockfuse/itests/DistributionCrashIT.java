package org.blockfuse.itests;

import static org.junit.Assert.*;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * Issue 8, fault 1: the real distribution killed with kill -9 while clients write. One writable
 * raw export per transport, made through bin/client; a writer per export writes random 4 KiB
 * blocks with an fdatasync every 64 writes and logs what was acknowledged. After a few thousand
 * acknowledged writes the Karaf JVM is killed under the writers: each gets an error within 2 s,
 * and the images, read directly, hold every acknowledged write (only the write in flight at the
 * kill may be old or new). The next start clears the stale mounts and brings the exports back
 * from their configuration, serving the same bytes.
 */
public class DistributionCrashIT {
    private static final long SIZE = 16L << 20;
    private static final int ACKNOWLEDGED_BEFORE_KILL = 3000;
    private static final long ERROR_MILLIS = 2000;

    private Distribution dist;
    private final List<AckedWriter> writers = new ArrayList<>();

    @Before
    public void unpack() throws Exception {
        dist = Distribution.unpack("dist-crash");
    }

    @After
    public void stopEverything() throws Exception {
        writers.forEach(AckedWriter::halt);
        dist.close(); // bin/stop or kill -9 by PID, then unmounts what is left
    }

    /** One export under test: its transport, name, image and mountpoint, and its writer. */
    private record Subject(String transport, String name, Path image, Path mount, AckedWriter writer) {
    }

    @Test
    public void aKillUnderRandomWritesLosesNoAcknowledgedWriteAndTheExportsComeBackOnEveryTransport() throws Exception {
        dist.start();
        long seed = Long.getLong("blockfuse.crash.seed", System.nanoTime());
        System.out.println("crash: seed " + seed + " (-Dblockfuse.crash.seed=" + seed + " repeats this run)");
        List<Subject> subjects = new ArrayList<>();
        for (String transport : dist.transports()) {
            String name = "crash-" + transport.replace('_', '-');
            Path image = dist.work.resolve(name + ".raw");
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                f.setLength(SIZE);
            }
            Path mount = dist.work.resolve(name + ".img");
            dist.unmountOnClose(mount);
            dist.client("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image + " " + mount);
            AckedWriter w = new AckedWriter(name, mount, SIZE, seed + subjects.size());
            writers.add(w);
            subjects.add(new Subject(transport, name, image, mount, w));
        }
        subjects.forEach(s -> s.writer().start());
        awaitAcknowledged(subjects, ACKNOWLEDGED_BEFORE_KILL);

        // kill -9 under the running writers (the time includes forking kill: an upper bound)
        long killed = System.nanoTime();
        dist.crash();
        for (Subject s : subjects) {
            AckedWriter w = s.writer();
            assertTrue(s.transport() + ": the writer got no error within 10 s of the kill", w.awaitEnd(10_000));
            long errorMillis = w.errorMillisAfter(killed);
            AckedWriter.Check c = w.check(Files.readAllBytes(s.image()));
            System.out.printf("crash %s: %d writes acknowledged (%d fdatasyncs, %d distinct offsets), %d lost, "
                    + "%d stray; in flight at the kill: %s; writer's error %d ms after kill -9: %s%n", s.transport(),
                    c.acknowledged(), w.fsyncs(), c.offsets(), c.lost(), c.stray(), c.inFlight(), errorMillis, w.error());
            assertEquals(s.transport() + ": acknowledged writes lost", 0, c.lost());
            assertEquals(s.transport() + ": blocks changed where no write was acknowledged", 0, c.stray());
            assertFalse(s.transport() + ": the write in flight is torn: " + c.inFlight(), c.inFlight().contains("torn"));
            assertTrue(s.transport() + ": the writer's error came " + errorMillis + " ms after the kill",
                    errorMillis <= ERROR_MILLIS);
            assertTrue(s.transport() + ": a crashed server leaves its mount behind", Distribution.mounted(s.mount()));
        }

        // the next start clears the stale mounts and mounts the exports again from etc/
        long t0 = System.nanoTime();
        dist.start();
        for (Subject s : subjects) {
            dist.awaitMounted(s.mount());
        }
        System.out.println("crash: restart to every export mounted again took "
                + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms");
        String log = dist.log();
        String list = dist.client("blockfuse:export-list --no-format");
        for (Subject s : subjects) {
            assertTrue(s.transport() + ": the stale mount is cleared and logged",
                    log.contains("cleared a stale FUSE mount at " + s.mount()));
            String line = list.lines().filter(l -> l.startsWith(s.name() + "\t") || l.startsWith(s.name() + " "))
                    .findFirst().orElseThrow(() -> new AssertionError(s.name() + " is not listed: " + list));
            assertTrue(line, line.contains(s.transport()) && line.contains("active"));
            assertArrayEquals(s.transport() + ": the export serves the image's bytes", Files.readAllBytes(s.image()),
                    Files.readAllBytes(s.mount()));
            dist.client("blockfuse:export-remove " + s.name());
            assertFalse(Distribution.mounted(s.mount()));
        }
    }

    /** Waits until every writer has {@code count} acknowledged writes; none may have failed yet. */
    private static void awaitAcknowledged(List<Subject> subjects, int count) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (true) {
            boolean all = true;
            for (Subject s : subjects) {
                assertNull(s.transport() + ": the writer failed before the kill", s.writer().error());
                all &= s.writer().acknowledged() >= count;
            }
            if (all) {
                return;
            }
            assertTrue("the writers did not reach " + count + " acknowledged writes in time", System.nanoTime() < deadline);
            Thread.sleep(10);
        }
    }
}
