package org.blockfuse.qcow2.internal;

import static org.blockfuse.qcow2.internal.Qcow2Format.*;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Reads the internal snapshot table; every length is bounded by QEMU's limits before it is used. */
public final class SnapshotTable {

    /** One snapshot table entry. */
    public record Entry(String id, String name, long l1Offset, int l1Size, long dateSeconds, int dateNanos,
                        long vmClockNanos, long vmStateSize, long diskSize) {
    }

    private SnapshotTable() {
    }

    static List<Entry> read(ImageFile file, Qcow2Header header) throws IOException {
        String name = file.path().toString();
        int count = header.snapshotCount;
        if (count == 0) {
            return List.of();
        }
        if (Integer.compareUnsigned(count, MAX_SNAPSHOTS) > 0) {
            throw Qcow2Header.refuse(name, "too many snapshots (" + Integer.toUnsignedString(count) + ")");
        }
        long pos = header.snapshotsOffset;
        if ((pos & (header.clusterSize - 1)) != 0 || pos < 0) {
            throw Qcow2Header.refuse(name, "snapshot table offset " + Long.toUnsignedString(pos) + " is invalid");
        }
        long tableEnd = pos + MAX_SNAPSHOT_TABLE_BYTES;
        List<Entry> entries = new ArrayList<>(count);
        ByteBuffer fixed = ByteBuffer.allocate(SN_FIXED_LENGTH);
        try {
            for (int i = 0; i < count; i++) {
                fixed.clear();
                file.readFully(pos, fixed);
                int extraSize = fixed.getInt(SN_EXTRA_DATA_SIZE);
                if (Integer.compareUnsigned(extraSize, MAX_SNAPSHOT_EXTRA_DATA) > 0) {
                    throw Qcow2Header.refuse(name, "snapshot extra data too large ("
                            + Integer.toUnsignedString(extraSize) + " bytes)");
                }
                int idSize = Short.toUnsignedInt(fixed.getShort(SN_ID_SIZE));
                int nameSize = Short.toUnsignedInt(fixed.getShort(SN_NAME_SIZE));
                long entryLength = alignUp((long) SN_FIXED_LENGTH + extraSize + idSize + nameSize, SN_ENTRY_ALIGNMENT);
                if (pos + entryLength > tableEnd) {
                    throw Qcow2Header.refuse(name, "snapshot table too large");
                }
                ByteBuffer rest = ByteBuffer.allocate(extraSize + idSize + nameSize);
                file.readFully(pos + SN_FIXED_LENGTH, rest);
                long vmState = Integer.toUnsignedLong(fixed.getInt(SN_VM_STATE_SIZE));
                if (extraSize >= SN_EXTRA_VM_STATE_SIZE_LARGE + Long.BYTES) {
                    vmState = rest.getLong(SN_EXTRA_VM_STATE_SIZE_LARGE);
                }
                // v2 snapshots may lack the disk size; they then have the image's current size.
                long diskSize = header.virtualSize;
                if (extraSize >= SN_EXTRA_DISK_SIZE + Long.BYTES) {
                    diskSize = rest.getLong(SN_EXTRA_DISK_SIZE) & ~SECTOR_MASK;
                }
                entries.add(new Entry(
                        new String(rest.array(), extraSize, idSize, StandardCharsets.UTF_8),
                        new String(rest.array(), extraSize + idSize, nameSize, StandardCharsets.UTF_8),
                        fixed.getLong(SN_L1_TABLE_OFFSET), fixed.getInt(SN_L1_SIZE),
                        Integer.toUnsignedLong(fixed.getInt(SN_DATE_SEC)), fixed.getInt(SN_DATE_NSEC),
                        fixed.getLong(SN_VM_CLOCK_NSEC), vmState, diskSize));
                pos += entryLength;
            }
        } catch (EOFException e) {
            throw Qcow2Header.refuse(name, "snapshot table lies beyond the end of the file");
        }
        return entries;
    }

    /** Lists the snapshots of the qcow2 image at path. */
    public static List<Entry> list(java.nio.file.Path path) throws IOException {
        try (ImageFile file = ImageFile.open(path)) {
            return read(file, Qcow2Header.read(file));
        }
    }

    /** Finds a snapshot by id first, then by name (QEMU's order). */
    static Entry find(List<Entry> entries, String idOrName) {
        for (Entry e : entries) {
            if (e.id().equals(idOrName)) {
                return e;
            }
        }
        for (Entry e : entries) {
            if (e.name().equals(idOrName)) {
                return e;
            }
        }
        return null;
    }
}
