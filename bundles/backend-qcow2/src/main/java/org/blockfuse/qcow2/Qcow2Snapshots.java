package org.blockfuse.qcow2;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

import org.blockfuse.qcow2.internal.SnapshotTable;

/** Reads the internal snapshot table of a qcow2 image, with the same checks the backend applies at open. */
public final class Qcow2Snapshots {

    private Qcow2Snapshots() {
    }

    /**
     * The snapshots of the image in table order.
     * @throws org.blockfuse.api.ImageException when the file is not a readable qcow2 image
     */
    public static List<Qcow2Snapshot> list(Path image) throws IOException {
        return SnapshotTable.list(image).stream()
                .map(e -> new Qcow2Snapshot(e.id(), e.name(), e.vmStateSize(),
                        Instant.ofEpochSecond(e.dateSeconds(), Integer.toUnsignedLong(e.dateNanos()) % 1_000_000_000L),
                        e.vmClockNanos(), e.diskSize()))
                .toList();
    }
}
