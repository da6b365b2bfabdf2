package org.blockfuse.qcow2;

import java.time.Instant;

/**
 * One internal snapshot of a qcow2 image.
 *
 * @param id           unique id string
 * @param name         name given by the user (may be empty)
 * @param vmStateSize  bytes of saved VM state (0 for disk-only snapshots)
 * @param date         creation time
 * @param vmClockNanos guest run time when the snapshot was taken
 * @param diskSize     virtual disk size at snapshot time
 */
public record Qcow2Snapshot(String id, String name, long vmStateSize, Instant date, long vmClockNanos, long diskSize) {
}
