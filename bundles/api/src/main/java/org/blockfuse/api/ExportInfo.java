package org.blockfuse.api;

import java.nio.file.Path;

/**
 * The state of one export as the operator sees it.
 * @param state  "active", "starting", "failed", "waiting" (for a transport or backend)
 * @param detail why it failed or waits; empty when active
 */
public record ExportInfo(String name, String image, String format, long virtualSize, Path mountpoint,
        String transport, boolean writable, boolean growable, String state, String detail) {
}
