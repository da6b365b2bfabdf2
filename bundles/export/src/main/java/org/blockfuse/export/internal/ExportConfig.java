package org.blockfuse.export.internal;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.AttributeType;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.osgi.service.metatype.annotations.Option;

/**
 * The keys of an export configuration (etc/org.blockfuse.export-NAME.cfg), described for
 * {@code config:meta}. Method names map to keys: {@code $_$} is a hyphen.
 */
@ObjectClassDefinition(name = "blockfuse export", description = "One disk image exported as one regular file through FUSE.", id = "org.blockfuse.export")
public @interface ExportConfig {
    @AttributeDefinition(required = false, description = "Export name; defaults to the NAME in the file name org.blockfuse.export-NAME.cfg.")
    String name();

    @AttributeDefinition(description = "Path of the disk image (file or block device).")
    String image();

    @AttributeDefinition(required = false, description = "Image format: raw (read-write) or qcow2 (read-only).")
    String format() default "raw";

    @AttributeDefinition(description = "Regular file to mount the image on; created if missing and removed again. May be the image itself.")
    String mountpoint();

    @AttributeDefinition(required = false, description = "Allow writes, truncate and fallocate (raw only).")
    boolean writable() default false;

    @AttributeDefinition(required = false, description = "Writes and fallocate past the end grow the image (needs writable).")
    boolean growable() default false;

    @AttributeDefinition(required = false, description = "Let users other than the owner open the file: on, off, or auto (on when running as root).",
            options = { @Option(value = "auto"), @Option(value = "on"), @Option(value = "off") })
    String allow$_$other() default "auto";

    @AttributeDefinition(required = false, description = "FUSE transport: auto (best available), legacy or io_uring.")
    String transport() default "auto";

    @AttributeDefinition(required = false, type = AttributeType.INTEGER, description = "Legacy transport worker threads; 0 = one per CPU.")
    int workers() default 0;

    @AttributeDefinition(required = false, type = AttributeType.INTEGER, description = "io_uring entries per CPU queue; 0 = the transport's default.")
    int queue$_$depth() default 0;

    @AttributeDefinition(required = false, description = "Host cache for raw images: writeback (page cache) or none (O_DIRECT).",
            options = { @Option(value = "writeback"), @Option(value = "none") })
    String cache() default "writeback";

    @AttributeDefinition(required = false, description = "Create a missing raw image as a sparse file of this size (e.g. 1G).")
    String create() default "";

    @AttributeDefinition(required = false, description = "qcow2: export this internal snapshot (id or name) read-only.")
    String snapshot() default "";

    @AttributeDefinition(required = false, description = "qcow2: open an image marked corrupt (read-only).")
    boolean allow$_$corrupt() default false;

    @AttributeDefinition(required = false, description = "qcow2: which backing and external data files an image may name: follow (any regular file or block device, as qemu-img), same-dir (only in the image's own folder) or none (refuse images that name one).",
            options = { @Option(value = "follow"), @Option(value = "same-dir"), @Option(value = "none") })
    String backing$_$policy() default "follow";

    @AttributeDefinition(required = false, description = "What to do when the connection dies under the export (aborted, unmounted by someone else, a transport failure): on-failure (mount again, backing off 1 s, 2 s, 4 s ... at most 5 times in 10 minutes) or never (stay failed).",
            options = { @Option(value = "on-failure"), @Option(value = "never") })
    String restart() default "on-failure";
}
