package org.blockfuse.management;

import java.util.List;

/** The export service, {@code org.blockfuse:type=exports}: adds exports (admin only). */
public interface ExportsMXBean {
    List<String> getNames();

    /**
     * Exports {@code image} at {@code mountpoint} as a new persistent export, like
     * {@code blockfuse:export-add}; returns once it is mounted.
     * @param format   "raw", "qcow2" or "" to detect it
     * @param writable raw images only
     */
    String add(String name, String image, String mountpoint, String format, boolean writable) throws Exception;
}
