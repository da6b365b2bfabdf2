package org.blockfuse.nbd.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.LockSupport;

import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.NativeException;

/**
 * One NBD request from the thread that waits for it: what is asked, where its reply goes, how it
 * ended. The same object is sent again after a reconnection, so the reply state is reset on each
 * send. Only the connection's reader touches the reply state and {@link #data} while the request is
 * in flight; the waiter reads them after {@link #await} returns.
 */
final class Request {
    final int type;
    final int flags;
    final long offset;
    final int length;
    /** READ: where the bytes go (position..limit); WRITE: what is written; null otherwise. */
    final ByteBuffer data;
    private final Thread waiter = Thread.currentThread();

    /** Set on each send, under the connection's send lock. */
    long cookie;
    long sentNanos;
    /** When this request first lost its connection (0 = never): retries end reconnect-timeout later. */
    long failedSinceNanos;

    // ---- reply assembly, reader thread only ----
    /** READ: the first chunk's range; most replies are one chunk, so no map is made for them. */
    private long firstFrom;
    private long firstEnd;
    /** READ: every chunk's range (start -> end) once a second chunk comes, to refuse overlaps. */
    private TreeMap<Long, Long> covered;
    private long coveredBytes;
    int error;
    String errorMessage = "";
    /** BLOCK_STATUS: descriptors as (length, flags) pairs. */
    int[] descriptors;

    private volatile boolean done;
    private volatile IOException failure;

    private Request(int type, int flags, long offset, int length, ByteBuffer data) {
        this.type = type;
        this.flags = flags;
        this.offset = offset;
        this.length = length;
        this.data = data;
    }

    static Request read(long offset, ByteBuffer dst) {
        return new Request(NbdWire.CMD_READ, 0, offset, dst.remaining(), dst);
    }

    static Request write(long offset, ByteBuffer src) {
        return new Request(NbdWire.CMD_WRITE, 0, offset, src.remaining(), src);
    }

    static Request withoutPayload(int type, int flags, long offset, int length) {
        return new Request(type, flags, offset, length, null);
    }

    String describe() {
        return NbdWire.command(type) + " offset " + offset + " length " + Integer.toUnsignedString(length);
    }

    long end() {
        return offset + Integer.toUnsignedLong(length);
    }

    /** Clears what an earlier attempt's reply left behind (under the send lock, before sending). */
    void resetReply() {
        covered = null;
        coveredBytes = 0;
        error = 0;
        errorMessage = "";
        descriptors = null;
    }

    /**
     * Records a READ chunk at {@code [from, from+n)}.
     * @throws ProtocolException when the chunk leaves the request or overlaps an earlier one
     */
    void cover(long from, long n) throws ProtocolException {
        if (n <= 0 || from < offset || from > end() - n) {
            throw new ProtocolException("chunk at " + from + " of " + n + " bytes lies outside " + describe());
        }
        if (coveredBytes == 0) {
            firstFrom = from;
            firstEnd = from + n;
            coveredBytes = n;
            return;
        }
        if (covered == null) {
            covered = new TreeMap<>();
            covered.put(firstFrom, firstEnd);
        }
        Map.Entry<Long, Long> before = covered.floorEntry(from);
        Map.Entry<Long, Long> after = covered.ceilingEntry(from);
        if ((before != null && before.getValue() > from) || (after != null && after.getKey() < from + n)) {
            throw new ProtocolException("chunk at " + from + " of " + n + " bytes overlaps an earlier chunk of " + describe());
        }
        covered.put(from, from + n);
        coveredBytes += n;
    }

    long coveredBytes() {
        return coveredBytes;
    }

    /** The destination bytes for {@code [from, from+n)} of a READ (a view; data's own position is kept). */
    ByteBuffer slice(long from, int n) {
        int at = data.position() + (int) (from - offset);
        return data.duplicate().limit(at + n).position(at);
    }

    void succeed() {
        done = true;
        LockSupport.unpark(waiter);
    }

    void fail(IOException e) {
        failure = e;
        done = true;
        LockSupport.unpark(waiter);
    }

    /** Ends the request with the server's error code (and message, if it sent one). */
    void failWithServerError() {
        String what = describe() + ": the server answered " + NbdWire.error(error)
                + (errorMessage.isEmpty() ? "" : " (" + errorMessage + ")");
        if (error == NbdWire.ENOSPC) {
            fail(new NativeException(what, Errno.ENOSPC)); // a full server is the client's business
        } else {
            fail(new ServerError(what, error));
        }
    }

    boolean done() {
        return done;
    }

    /** Waits until the request ends or {@code deadline} passes; true when it ended. */
    boolean await(long deadlineNanos) {
        while (!done) {
            long left = deadlineNanos - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            LockSupport.parkNanos(this, left);
        }
        return true;
    }

    /** The outcome, once {@link #done()}. */
    void rethrow() throws IOException {
        IOException e = failure;
        if (e != null) {
            throw e;
        }
    }

    /** An error the server answered; the code decides fall-backs (ENOTSUP) and retries (ESHUTDOWN). */
    static final class ServerError extends IOException {
        private static final long serialVersionUID = 1L;
        final int code;

        ServerError(String message, int code) {
            super(message);
            this.code = code;
        }
    }
}
