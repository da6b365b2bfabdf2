package org.blockfuse.itests;

import static org.junit.Assert.*;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * The distribution as an operator runs it: bin/start, bin/client (as root, no -u/-p), bin/stop.
 * Exports persist across a restart, and after a crash (kill -9) the stale mount is cleared and the
 * export comes back. The admin password generated on the first start stays the same.
 */
public class DistributionRestartIT {
    private Distribution dist;

    @Before
    public void unpack() throws Exception {
        dist = Distribution.unpack("dist-restart");
    }

    @After
    public void stopEverything() throws Exception {
        dist.close();
    }

    @Test
    public void exportsComeBackAfterARestartAndAfterACrash() throws Exception {
        Path image = dist.work.resolve("persist.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(32 << 20);
        }
        Path mount = dist.work.resolve("persist.img");
        dist.unmountOnClose(mount);
        dist.start();
        String password = dist.adminPassword();
        dist.client("blockfuse:export-add --writable persist " + image + " " + mount);
        assertTrue(Files.exists(dist.home.resolve("etc/org.blockfuse.export-persist.cfg")));
        assertTrue(Distribution.mounted(mount));
        Files.write(mount, "before restart".getBytes(StandardCharsets.US_ASCII), StandardOpenOption.WRITE);

        // clean restart: unmounted while down, back after start
        dist.stop();
        assertFalse("nothing stays mounted after shutdown", Distribution.mounted(mount));
        assertFalse("the created mountpoint is removed", Files.exists(mount));
        dist.start();
        dist.awaitMounted(mount);
        assertEquals("before restart", new String(Files.readAllBytes(mount), 0, 14, StandardCharsets.US_ASCII));
        assertEquals("a second start keeps the admin password", password, dist.adminPassword());

        // crash: the mount goes stale ("Transport endpoint is not connected") and must be cleared on start
        dist.crash();
        assertTrue("a crashed server leaves its mount behind", Distribution.mounted(mount));
        dist.start();
        dist.awaitMounted(mount);
        assertEquals("before restart", new String(Files.readAllBytes(mount), 0, 14, StandardCharsets.US_ASCII));
        assertTrue("the stale mount is logged", dist.log().contains("cleared a stale FUSE mount at " + mount));
        assertEquals(password, dist.adminPassword());

        dist.client("blockfuse:export-remove persist");
        assertFalse(Distribution.mounted(mount));
        assertFalse(Files.exists(dist.home.resolve("etc/org.blockfuse.export-persist.cfg")));
    }
}
