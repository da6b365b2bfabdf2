package org.blockfuse.api;

import java.util.Map;

/** What a transport gets from the export: an initialised FUSE connection and its request handler. */
public interface FuseChannel {

    /** Export name, for thread names and log lines. */
    String name();

    /** The connection's /dev/fuse file descriptor (clone it for more readers). */
    int deviceFd();

    /**
     * Serves requests read from {@code fd} (a clone of {@link #deviceFd()}) on the calling thread
     * until the connection ends or halts: read one request, answer it, write the reply on the
     * same fd. The connection itself already serves {@link #deviceFd()} this way on its own thread.
     * Never throws: anything unexpected halts the connection with the thread, opcode and cause.
     */
    void serveDevice(int fd);

    /** Negotiated max_write: the largest WRITE payload and the largest READ reply. */
    int maxWrite();

    /** Negotiated max_pages per request (32 when FUSE_MAX_PAGES was not agreed). */
    default int maxPages() {
        return 32;
    }

    /** Bytes a legacy read() must offer to receive any request of this connection. */
    int requestBufferSize();

    RequestHandler handler();

    /** Transport tuning from the export's configuration (e.g. workers, queue-depth). */
    Map<String, String> options();

    /**
     * Stops the connection after a protocol violation or a fatal transport error.
     * Logs the reason once; safe to call from any thread, more than once.
     */
    void halt(String reason);

    /** True once {@link #halt} was called or the connection ended. */
    boolean halted();

    /** Requests this connection has served so far, over any transport (for statistics). */
    default long requestsServed() {
        return 0;
    }

    /** Requests the kernel has sent this connection and not yet had answered; -1 if it cannot tell. */
    default int waiting() {
        return -1;
    }

    /**
     * A transport thread saw the kernel end the connection (a /dev/fuse read or a ring entry
     * answered ENODEV, ECONNABORTED or ENOTCONN). Unless the export itself is ending the
     * connection, this is a failure (someone aborted or unmounted it) and halts the export.
     * @param how the errno's name and the thread that saw it, for the log line
     */
    default void ended(String how) {
    }
}
