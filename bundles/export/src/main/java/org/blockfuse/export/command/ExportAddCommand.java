package org.blockfuse.export.command;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.completers.FileCompleter;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.export.command.completers.FormatCompleter;
import org.blockfuse.export.command.completers.TransportCompleter;

@Service
@Command(scope = "blockfuse", name = "export-add", description = "Exports a disk image as one regular file through FUSE.",
        detailedDescription = "Mounts IMAGE on the regular file MOUNTPOINT (created if missing, removed again on export-remove; "
                + "it may be the image itself). The export is stored as etc/org.blockfuse.export-NAME.cfg and comes back "
                + "after a restart. Nothing is left behind when the export cannot start.")
public class ExportAddCommand implements Action {
    @Reference
    ExportService service;

    @Argument(index = 0, name = "name", required = true, description = "Export name (letters, digits, '.', '_', '-').")
    String name;

    @Argument(index = 1, name = "image", required = true, description = "Absolute path of the image file or block device; for --format nbd the server's URI: "
            + "nbd://HOST[:PORT]/NAME or nbd+unix:///NAME?socket=PATH.")
    @Completion(FileCompleter.class)
    String image;

    @Argument(index = 2, name = "mountpoint", required = true, description = "Absolute path of the regular file to mount on.")
    @Completion(FileCompleter.class)
    String mountpoint;

    @Option(name = "--format", aliases = "-f", description = "Image format: raw (read-write capable), qcow2 (read-only) or nbd (a disk on an NBD server; "
            + "read-write unless the server is read-only). Default raw.")
    @Completion(FormatCompleter.class)
    String format = "raw";

    @Option(name = "--writable", aliases = "-w", description = "Allow writes, truncate and fallocate (mode 0600 instead of 0400).")
    boolean writable;

    @Option(name = "--growable", description = "Writes and fallocate past the end grow the image (needs --writable). "
            + "Without it a write crossing the end is shortened and one beyond it fails with ENOSPC.")
    boolean growable;

    @Option(name = "--allow-other", description = "on: every user may open the file; off: only the owner; "
            + "auto (default): on when running as root.")
    String allowOther = "auto";

    @Option(name = "--transport", aliases = "-t", description = "auto (default: the best available, falling back to legacy), "
            + "legacy (/dev/fuse read/write) or io_uring (FUSE-over-io_uring, Linux 6.14+).")
    @Completion(TransportCompleter.class)
    String transport = "auto";

    @Option(name = "--workers", description = "Legacy transport threads (default: one per CPU).")
    String workers;

    @Option(name = "--queue-depth", description = "io_uring entries per CPU queue (default: the transport's).")
    String queueDepth;

    @Option(name = "--passthrough", description = "FUSE passthrough for raw images: auto (where every semantic holds: "
            + "read-only, growable or block-device exports), on (required) or off.")
    String passthrough;

    @Option(name = "--drain-grace", description = "Seconds files opened before a switch io_uring -> legacy keep their "
            + "old connection before it is cut off (default 30).")
    String drainGrace;

    @Option(name = "--cache", description = "writeback (default, host page cache) or none (O_DIRECT on the image).")
    String cache;

    @Option(name = "--create", description = "Create a missing raw image as a sparse file of this size, e.g. 1G.")
    String create;

    @Option(name = "--snapshot", description = "qcow2: export this internal snapshot (id or name).")
    String snapshot;

    @Option(name = "--allow-corrupt", description = "qcow2: open an image marked corrupt (read-only).")
    boolean allowCorrupt;

    @Option(name = "--connections", description = "nbd: connections to the server when it allows several (default 4).")
    String connections;

    @Option(name = "--reconnect-timeout", description = "nbd: seconds requests wait for a lost server before EIO (default 30).")
    String reconnectTimeout;

    @Option(name = "--request-timeout", description = "nbd: seconds without a reply before the connection is dropped and the request retried (default 60).")
    String requestTimeout;

    @Option(name = "--tls-truststore", description = "nbds: CA certificates to trust, a PEM file or a PKCS12/JKS key store "
            + "(its password, if any, is the tls-truststore-password key in etc/, never a shell argument).")
    String tlsTruststore;

    @Option(name = "--tls-keystore", description = "nbds: PKCS12/JKS key store with a client certificate "
            + "(password: the tls-keystore-password key in etc/).")
    String tlsKeystore;

    @Option(name = "--tls-hostname", description = "nbds: the name the server's certificate must carry (default: the URI's host).")
    String tlsHostname;

    @Override
    public Object execute() throws Exception {
        Map<String, String> options = new LinkedHashMap<>();
        put(options, "workers", workers);
        put(options, "queue-depth", queueDepth);
        put(options, "drain-grace", drainGrace);
        put(options, "passthrough", passthrough);
        put(options, "cache", cache);
        put(options, "create", create);
        put(options, "snapshot", snapshot);
        put(options, "connections", connections);
        put(options, "reconnect-timeout", reconnectTimeout);
        put(options, "request-timeout", requestTimeout);
        put(options, "tls-truststore", tlsTruststore);
        put(options, "tls-keystore", tlsKeystore);
        put(options, "tls-hostname", tlsHostname);
        if (allowCorrupt) {
            options.put("allow-corrupt", "true");
        }
        ExportInfo info = service.add(new ExportSpec(name, image, format, Path.of(mountpoint), writable, growable,
                allowOther, transport, options));
        System.out.println("Export " + info.name() + " mounted at " + info.mountpoint() + " via " + info.transport());
        return null;
    }

    private static void put(Map<String, String> options, String key, String value) {
        if (value != null) {
            options.put(key, value);
        }
    }
}
