package org.blockfuse.uring;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.legacy.LegacyTransport;
import org.blockfuse.raw.RawBackendFactory;

/**
 * Exports one raw image without Karaf, for bench/transport-bench.sh:
 * {@code BenchExport legacy|io_uring IMAGE MOUNTPOINT [key=value ...]}. Keys {@code cache} go to the
 * raw backend, {@code passthrough=on} answers opens with FUSE passthrough (the export is then
 * growable, as the export manager requires of a passed-through image file), everything else goes
 * to the transport. Prints "READY &lt;layout&gt;" once the mount answers,
 * serves until SIGTERM/SIGINT or until stdin closes, then unmounts.
 */
public final class BenchExport {
    private BenchExport() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: BenchExport legacy|io_uring IMAGE MOUNTPOINT [key=value ...]");
            System.exit(2);
        }
        FuseTransport transport = args[0].equals("legacy") ? new LegacyTransport() : new UringTransport();
        if (!transport.availability().available()) {
            System.err.println(args[0] + " unavailable: " + transport.availability().reason());
            System.exit(3);
        }
        Map<String, String> backendOptions = new HashMap<>();
        Map<String, String> options = new HashMap<>();
        boolean passthrough = false;
        boolean statistics = true;
        boolean directIo = true; // the product's default (fuse-cache=direct)
        for (int i = 3; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            if (kv[0].equals("fuse-cache")) {
                directIo = !(kv.length > 1 && kv[1].equals("page"));
                continue;
            }
            if (kv[0].equals("statistics")) {
                statistics = !(kv.length > 1 && kv[1].equals("off"));
                continue;
            }
            if (kv[0].equals("passthrough")) {
                passthrough = kv.length > 1 && kv[1].equals("on");
                continue;
            }
            (kv[0].equals("cache") ? backendOptions : options).put(kv[0], kv.length > 1 ? kv[1] : "");
        }
        Path image = Path.of(args[1]);
        FuseExport export = FuseExport.start("bench", new RawBackendFactory().open(new BackendRequest(image, true,
                backendOptions)), Path.of(args[2]), new ExportPolicy(true, passthrough, true, 0, 0, passthrough, directIo), image.toString(),
                options, transport, (generation, reason) -> System.err.println("halted: " + reason),
                new org.blockfuse.fuse.RequestStats(statistics));
        CountDownLatch done = new CountDownLatch(1);
        Thread closer = new Thread(() -> {
            export.close();
            done.countDown();
        });
        Runtime.getRuntime().addShutdownHook(closer);
        if (passthrough && !export.passthrough().startsWith("on")) {
            System.err.println("passthrough unavailable: " + export.passthrough());
            export.close();
            System.exit(3);
        }
        System.out.println("READY " + export.session().describe() + (passthrough ? ", passthrough " + export.passthrough() : "")
                + (statistics ? "" : ", statistics off"));
        System.out.flush();
        while (System.in.read() >= 0) {
            // serve until stdin closes
        }
        Runtime.getRuntime().removeShutdownHook(closer);
        closer.run();
        if (export.session() instanceof org.blockfuse.uring.internal.UringSession) {
            var s = (org.blockfuse.uring.internal.UringSession) export.session();
            System.out.println("SERVED " + s.requestsServed() + " OFFLOADED " + s.requestsOffloaded());
        }
        done.await();
    }
}
