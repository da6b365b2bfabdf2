package org.blockfuse.api;

import java.io.IOException;

/** Opens images of one format; registered as a service with the property {@link #FORMAT}. */
public interface BlockBackendFactory extends OptionOwner {

    /** Service property naming the format (e.g. "raw", "qcow2"). */
    String FORMAT = "blockfuse.format";

    String format();

    /** True when this format can be opened for writing at all. */
    boolean supportsWrite();

    /**
     * Opens an image.
     * @throws ImageException with a one-line reason an operator can act on
     */
    BlockBackend open(BackendRequest request) throws IOException;
}
