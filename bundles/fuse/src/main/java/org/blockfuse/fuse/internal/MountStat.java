package org.blockfuse.fuse.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Stats a FUSE mount from a helper thread with a time bound: a stat on a mount whose server never
 * answers would block the caller for ever. The helper is released when the connection ends.
 */
public final class MountStat {
    private MountStat() {
    }

    /**
     * The file size seen through the mount.
     * @throws TimeoutException if no answer came within {@code seconds}
     * @throws IOException      what the stat itself reported (e.g. "Transport endpoint is not connected")
     */
    public static long size(Path p, long seconds) throws IOException, TimeoutException, InterruptedException {
        CompletableFuture<Long> size = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                size.complete(Files.size(p));
            } catch (IOException | RuntimeException e) {
                size.completeExceptionally(e);
            }
        }, "blockfuse-mount-probe");
        t.setDaemon(true);
        t.start();
        try {
            return size.get(seconds, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException) {
                throw (IOException) e.getCause();
            }
            throw new IOException(e.getCause());
        }
    }
}
