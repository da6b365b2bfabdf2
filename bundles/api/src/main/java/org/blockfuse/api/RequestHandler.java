package org.blockfuse.api;

import java.nio.ByteBuffer;

/**
 * Serves one FUSE request and writes its reply payload; no I/O loop, no threads.
 * Buffers are the transport's own memory: the handler reads the request in place and writes
 * the reply payload (without the 16-byte out header) into {@code reply} from index 0.
 * Returns the reply payload length, a negative errno, or {@link #NO_REPLY}.
 * Thread-safe.
 */
public interface RequestHandler {

    /** The request takes no reply (FORGET, or the connection was halted). */
    int NO_REPLY = Integer.MIN_VALUE;

    /**
     * Legacy layout: {@code request} holds exactly one request as read from /dev/fuse
     * (in header, op struct, data), from index 0 to its limit.
     */
    int handle(ByteBuffer request, ByteBuffer reply);

    /**
     * Split layout (FUSE-over-io_uring): the 40-byte in header, the op struct and the
     * payload arrive in separate buffers, each from index 0 to its limit.
     */
    int handle(ByteBuffer inHeader, ByteBuffer opArgs, ByteBuffer payload, ByteBuffer reply);

    /**
     * Split layout, for a request that reached the transport at {@code arrivedNanos}
     * ({@link System#nanoTime()}) and may have waited since (e.g. for a worker): latency
     * statistics then count from its arrival.
     */
    default int handle(ByteBuffer inHeader, ByteBuffer opArgs, ByteBuffer payload, ByteBuffer reply, long arrivedNanos) {
        return handle(inHeader, opArgs, payload, reply);
    }
}
