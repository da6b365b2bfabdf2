package org.blockfuse.itests;

import static org.junit.Assert.*;

import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * Issue 8, fault 5 (Karaf shutdown): bin/stop of the real distribution while fio runs randrw
 * against an export on every transport. Karaf exits within a bounded time (each export under
 * load drains for at most 10 s, then its connection is aborted), fio ends, nothing stays mounted.
 */
public class DistributionShutdownUnderLoadIT {
    private static final long SIZE = FioLoad.SPAN;
    /** Drain (10 s) and abort grace (5 s) per loaded export, one after the other, and Karaf's own stop. */
    private static final long EXIT_MILLIS_PER_EXPORT = 15_000;
    private static final long KARAF_MILLIS = 15_000;

    private Distribution dist;
    private final List<FioLoad> fios = new ArrayList<>();

    @Before
    public void unpack() throws Exception {
        dist = Distribution.unpack("dist-shutdown");
    }

    @After
    public void stopEverything() throws Exception {
        for (FioLoad fio : fios) {
            fio.close(); // by PID
        }
        dist.close();
    }

    @Test
    public void binStopUnderFioLoadExitsInBoundedTimeAndLeavesNothingMountedOnEveryTransport() throws Exception {
        dist.start();
        List<String> transports = dist.transports();
        List<Path> mounts = new ArrayList<>();
        for (String transport : transports) {
            String name = "stop-" + transport.replace('_', '-');
            Path image = dist.work.resolve(name + ".raw");
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                f.setLength(SIZE);
            }
            Path mount = dist.work.resolve(name + ".img");
            dist.unmountOnClose(mount);
            mounts.add(mount);
            dist.client("blockfuse:export-add --writable --transport " + transport + " " + name + " " + image + " " + mount);
            FioLoad fio = FioLoad.start(name, mount, dist.work.resolve(name + ".fio.out"));
            fios.add(fio);
            fio.awaitWritten(image, 1 << 20);
        }

        String pid = dist.pid();
        long t0 = System.nanoTime();
        dist.stop(); // bin/stop, then waits (at most 60 s) for the JVM to exit
        long exitMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        for (int i = 0; i < transports.size(); i++) {
            FioLoad fio = fios.get(i);
            assertTrue(transports.get(i) + ": fio still runs after Karaf exited", fio.awaitEnd(10_000));
            System.out.printf("shutdown %s: fio exit %d (%s)%n", transports.get(i), fio.exitValue(), fio.firstError());
        }
        System.out.printf("shutdown: bin/stop under fio load on %s: Karaf (pid %s) exited after %d ms%n", transports, pid,
                exitMillis);
        assertTrue("Karaf took " + exitMillis + " ms to exit",
                exitMillis <= EXIT_MILLIS_PER_EXPORT * transports.size() + KARAF_MILLIS);
        for (Path mount : mounts) {
            assertFalse(mount + " is still mounted", Distribution.mounted(mount));
        }
        assertFalse("the demo is still mounted", Distribution.mounted(dist.demoMount()));
    }
}
