package org.blockfuse.api;

import java.io.IOException;

/**
 * Moves FUSE requests between the kernel and a {@link RequestHandler}. A transport owns its
 * threads and buffers and nothing else: the connection (fd, mount, INIT) belongs to the export.
 * Registered as a service with the property {@link #NAME}.
 */
public interface FuseTransport extends OptionOwner {

    /** Service property naming the transport (e.g. "legacy", "io_uring"). */
    String NAME = "blockfuse.transport";

    String name();

    /** Higher ranks are preferred by {@code --transport auto}. */
    int rank();

    /** Probed once; the reason says why not when unavailable. */
    Availability availability();

    /**
     * True when this transport can take over a connection another transport is serving, without
     * a new mount (FUSE-over-io_uring can: the kernel moves traffic to the rings once every queue
     * is registered; nothing can move a connection back to /dev/fuse).
     */
    default boolean joinsLiveConnections() {
        return false;
    }

    /** Starts serving an initialised connection. */
    TransportSession attach(FuseChannel channel) throws IOException;
}
