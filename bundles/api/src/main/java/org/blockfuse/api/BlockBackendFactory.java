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
     * True when the image is a host path (checked, canonicalised and compared with mountpoints as
     * such before anything is saved); false when it is a location such as a URI.
     */
    default boolean imageIsPath() {
        return true;
    }

    /**
     * Checks an image location that is not a path ({@link #imageIsPath()} false), before anything
     * is saved or mounted; the connection itself is made by {@link #open}.
     * @throws ImageException with a one-line reason naming what is wrong
     */
    default void checkLocation(String image) throws ImageException {
    }

    /**
     * Opens an image.
     * @throws ImageException with a one-line reason an operator can act on
     */
    BlockBackend open(BackendRequest request) throws IOException;
}
