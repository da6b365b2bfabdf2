package org.blockfuse.uring;

import java.nio.file.Path;
import java.util.Map;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.legacy.LegacyTransport;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.raw.RawBackendFactory;

/**
 * The export code run by an ordinary user ({@link UnprivilegedMountTest} starts it with runuser):
 * mounts IMAGE at MOUNTPOINT over TRANSPORT as the calling uid, prints "READY transport layout",
 * serves until stdin closes, unmounts, prints "UNMOUNTED served N" (requests its transport's queues
 * took). An unavailable transport prints
 * "UNAVAILABLE reason" and exits 2; a failed mount prints "FAILED reason" and exits 1.
 */
public final class UserExport {
    private UserExport() {
    }

    public static void main(String[] args) throws Exception {
        FuseTransport transport = args[0].equals("legacy") ? new LegacyTransport() : new UringTransport();
        if (!transport.availability().available()) {
            System.out.println("UNAVAILABLE " + transport.availability().reason());
            System.exit(2);
        }
        Path image = Path.of(args[1]);
        boolean allowOther = FuseExport.unprivilegedAllowOther();
        FuseExport export;
        try {
            export = FuseExport.start("user", new RawBackendFactory().open(new BackendRequest(image, true, Map.of())),
                    Path.of(args[2]), new ExportPolicy(true, false, allowOther, Libc.getuid(), Libc.getgid()),
                    image.toString(), Map.of(), transport, reason -> System.out.println("HALTED " + reason));
        } catch (Exception e) {
            System.out.println("FAILED " + e.getMessage());
            System.exit(1);
            return;
        }
        System.out.println("READY " + transport.name() + " " + export.session().describe() + " uid " + Libc.geteuid()
                + " allow_other " + allowOther);
        System.out.flush();
        while (System.in.read() >= 0) {
            // serve until stdin closes
        }
        long served = export.statistics().queues().stream().mapToLong(q -> q.served()).sum();
        export.close();
        System.out.println("UNMOUNTED served " + served);
    }
}
