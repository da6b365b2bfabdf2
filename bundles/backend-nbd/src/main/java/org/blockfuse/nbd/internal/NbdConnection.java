package org.blockfuse.nbd.internal;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

import org.blockfuse.nativeio.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * One connection to the server, kept up across server restarts. Any thread sends its own request
 * (under the send lock, tagged with a fresh cookie) and waits; this connection's reader thread
 * reads replies in whatever order they come and hands each to its request, reading READ payloads
 * straight into the waiter's buffer. No thread per request.
 *
 * <p>When the connection breaks, or the server breaks the protocol, or a request goes unanswered
 * for request-timeout, the socket is closed and its requests park. The reader then reconnects; a
 * new socket to the same export (same size and flags) gets the parked requests again, in order.
 * A request parked for reconnect-timeout fails with EIO, and while the server stays away past that
 * window new requests fail at once. Nothing a server sent on a dropped connection is used.
 */
final class NbdConnection {
    private static final Logger LOG = LoggerFactory.getLogger(NbdConnection.class);
    private static final int UP = 0;
    private static final int DOWN = 1;
    private static final int CLOSED = 2;
    /** A BLOCK_STATUS chunk larger than this is not a reply to our one-context request. */
    private static final int MAX_STATUS_CHUNK = 1 << 20;
    private static final long MAX_BACKOFF_NANOS = TimeUnit.SECONDS.toNanos(1);
    /** Requests per gathering write. */
    private static final int BATCH = 64;

    private final NbdClient client;
    final int index;
    private final String exportMdc = MDC.get("export");

    private final ReentrantLock send = new ReentrantLock();
    private final Condition changed = send.newCondition();
    private final Map<Long, Request> inFlight = new ConcurrentHashMap<>();
    /** Requests waiting for the connection to come back, oldest first (under {@link #send}). */
    private final ArrayDeque<Request> parked = new ArrayDeque<>();
    /** Requests queued by any thread, sent by whoever holds the send lock. */
    private final ConcurrentLinkedQueue<Request> outbox = new ConcurrentLinkedQueue<>();
    /** One fixed header buffer per request of a batch (views of one direct buffer): sending allocates none. */
    private final ByteBuffer[] headerViews = new ByteBuffer[BATCH];
    private final ByteBuffer[] gather = new ByteBuffer[2 * BATCH];
    /** The batch being sent (under the send lock), reused. */
    private final List<Request> batch = new ArrayList<>(BATCH);
    private volatile Wire channel;
    private volatile int state = DOWN;
    private long nextCookie = 1;
    private long downSinceNanos = System.nanoTime();
    private volatile String downReason = "not connected yet";
    /** Why this side closed the socket (a timeout), which the reader's exception would not say. */
    private volatile String dropReason;
    /** The server stayed away past reconnect-timeout: new requests fail at once until it is back. */
    private volatile boolean expired;
    private long reconnects;
    /** Protocol violations since the last good reply: each doubles the pause before reconnecting. */
    private volatile int violations;
    private final List<Thread> threads = new ArrayList<>();

    /** The CPU this connection's threads run on, or -1 (free). */
    final int cpu;

    NbdConnection(NbdClient client, int index, int cpu) {
        this.client = client;
        this.index = index;
        this.cpu = cpu;
        ByteBuffer headers = ByteBuffer.allocateDirect(BATCH * NbdWire.REQUEST_SIZE);
        for (int i = 0; i < BATCH; i++) {
            headerViews[i] = headers.slice(i * NbdWire.REQUEST_SIZE, NbdWire.REQUEST_SIZE);
        }
    }

    /** Starts on an already negotiated socket (the first connection), or reconnects in the background (null). */
    void start(Wire negotiated, String whyNot) {
        send.lock();
        try {
            if (negotiated != null) {
                channel = negotiated;
                state = UP;
                startReader(negotiated);
            } else {
                downReason = whyNot;
                startThread("nbd-reconnect", () -> reconnect(null));
            }
        } finally {
            release();
        }
    }

    boolean up() {
        return state == UP;
    }

    /** Sends {@code r} now, or parks it while the connection is down. */
    void submit(Request r) throws IOException {
        if (state == CLOSED) {
            throw new IOException("the export is closing");
        }
        if (state == DOWN && expired) {
            throw new IOException(unreachable(r));
        }
        outbox.add(r);
        flush();
    }

    private String unreachable(Request r) {
        return r.describe() + ": the server " + client.uri.server() + " has been unreachable for more than "
                + "reconnect-timeout (" + downReason + ")";
    }

    /**
     * Sends what the outbox holds. Whoever has the send lock sends for every thread that queued
     * meanwhile, in one gathering write, so no sender waits for another and a busy connection costs
     * far fewer system calls than one per request.
     */
    private void flush() {
        while (!outbox.isEmpty() && send.tryLock()) {
            try {
                drainOutbox();
            } finally {
                send.unlock();
            }
        }
    }

    /** Unlocks the send lock, then sends what others queued while it was held. */
    private void release() {
        send.unlock();
        flush();
    }

    /** Under the send lock: sends (or parks, or fails) everything queued, in order. */
    private void drainOutbox() {
        for (;;) {
            batch.clear();
            for (Request r; batch.size() < BATCH && (r = outbox.poll()) != null;) {
                batch.add(r);
            }
            if (batch.isEmpty()) {
                return;
            }
            if (state == UP) {
                transmit(batch);
                continue;
            }
            for (Request r : batch) {
                if (state == CLOSED) {
                    r.fail(new IOException(r.describe() + ": the export is closing"));
                } else if (expired) {
                    r.fail(new IOException(unreachable(r)));
                } else {
                    if (r.failedSinceNanos == 0) {
                        r.failedSinceNanos = downSinceNanos; // it waits out what is left of the window, no more
                    }
                    parked.add(r);
                }
            }
        }
    }

    /** Writes the requests (and WRITE payloads) on the current socket in one gathering write; under the send lock. */
    private void transmit(List<Request> requests) {
        int k = 0;
        long now = System.nanoTime();
        for (int i = 0; i < requests.size(); i++) {
            Request r = requests.get(i);
            r.cookie = nextCookie++;
            r.resetReply();
            inFlight.put(r.cookie, r);
            r.sentNanos = now;
            gather[k++] = headerViews[i].clear().putInt(NbdWire.REQUEST_MAGIC).putShort((short) r.flags)
                    .putShort((short) r.type).putLong(r.cookie).putLong(r.offset).putInt(r.length).flip();
            if (r.type == NbdWire.CMD_WRITE) {
                gather[k++] = r.data.duplicate(); // the caller's buffer keeps its position
            }
        }
        Wire ch = channel;
        try {
            ch.writeFully(gather, k);
        } catch (IOException e) {
            // the requests stay in flight: the reader sees the socket fail and parks them for the next one
            closeQuietly(ch);
        } finally {
            Arrays.fill(gather, 0, k, null); // no payload outlives its request here
        }
    }

    /** Called by the watchdog: drops the socket when its oldest request has waited past request-timeout. */
    void checkTimeouts(long now) {
        if (state != UP) {
            return;
        }
        Request oldest = null;
        for (Request r : inFlight.values()) {
            if (oldest == null || r.sentNanos - oldest.sentNanos < 0) {
                oldest = r;
            }
        }
        if (oldest != null && now - oldest.sentNanos > TimeUnit.MILLISECONDS.toNanos(client.options.requestMillis())) {
            Wire ch = channel;
            dropReason = oldest.describe() + " got no reply within request-timeout";
            LOG.warn("nbd {}: connection {}: {} got no reply in {} s (request-timeout); dropping the connection, "
                    + "its {} requests will be sent again", client.uri.server(), index, oldest.describe(),
                    client.options.requestMillis() / 1000, inFlight.size());
            closeQuietly(ch);
        }
    }

    /** Ends a request whose waiter gives up (a bug elsewhere if it ever runs): nothing touches it after this. */
    void abandon(Request r) {
        Wire ch = channel;
        closeQuietly(ch); // the reader leaves r's buffer at once: its read fails
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        send.lock();
        try {
            while (inFlight.containsValue(r) && channel == ch && state == UP && System.nanoTime() < deadline) {
                changed.await(100, TimeUnit.MILLISECONDS); // until the reader has parked the requests
            }
            outbox.remove(r);
            parked.remove(r);
            inFlight.values().remove(r);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            release();
        }
    }

    // ---- the reader ----

    private void startReader(Wire ch) {
        startThread("nbd-reader", () -> {
            try {
                Inbound in = new Inbound(ch);
                for (;;) {
                    readReply(in);
                }
            } catch (IOException | RuntimeException e) {
                lost(ch, e);
            }
        });
    }

    private void readReply(Inbound in) throws IOException {
        int magic = in.getInt();
        if (magic == NbdWire.SIMPLE_REPLY_MAGIC) {
            int error = in.getInt();
            simpleReply(in, error, in.getLong());
        } else if (magic == NbdWire.STRUCTURED_REPLY_MAGIC && client.facts.structured()) {
            int flags = Short.toUnsignedInt(in.getShort());
            int type = Short.toUnsignedInt(in.getShort());
            long cookie = in.getLong();
            chunk(in, flags, type, cookie, in.getInt());
        } else {
            throw new ProtocolException("reply magic 0x" + Integer.toHexString(magic));
        }
    }

    private Request pending(long cookie, String what) throws ProtocolException {
        Request r = inFlight.get(cookie);
        if (r == null) {
            throw new ProtocolException(what + " for cookie " + cookie + ", which no request in flight has");
        }
        return r;
    }

    private void simpleReply(Inbound in, int error, long cookie) throws IOException {
        Request r = pending(cookie, "simple reply");
        if (error != 0) {
            r.error = error;
        } else if (r.type == NbdWire.CMD_READ) {
            in.readInto(r.slice(r.offset, r.length)); // a simple READ reply carries all of it
        } else if (r.type == NbdWire.CMD_BLOCK_STATUS) {
            throw new ProtocolException("simple reply without error to " + r.describe());
        }
        finish(r, true);
    }

    private void chunk(Inbound in, int flags, int type, long cookie, int length) throws IOException {
        Request r = pending(cookie, "reply chunk type " + type);
        long n = Integer.toUnsignedLong(length);
        switch (type) {
            case NbdWire.REPLY_TYPE_OFFSET_DATA: {
                requireRead(r, type);
                if (n <= 8) {
                    throw new ProtocolException("OFFSET_DATA chunk of " + n + " bytes for " + r.describe());
                }
                long from = in.getLong();
                r.cover(from, n - 8);
                in.readInto(r.slice(from, (int) (n - 8)));
                break;
            }
            case NbdWire.REPLY_TYPE_OFFSET_HOLE: {
                requireRead(r, type);
                if (n != 12) {
                    throw new ProtocolException("OFFSET_HOLE chunk of " + n + " bytes for " + r.describe());
                }
                long from = in.getLong();
                long hole = Integer.toUnsignedLong(in.getInt());
                r.cover(from, hole);
                ByteBuffer dst = r.slice(from, (int) hole);
                while (dst.hasRemaining()) {
                    dst.put((byte) 0);
                }
                break;
            }
            case NbdWire.REPLY_TYPE_BLOCK_STATUS: {
                if (r.type != NbdWire.CMD_BLOCK_STATUS || r.descriptors != null) {
                    throw new ProtocolException("BLOCK_STATUS chunk for " + r.describe()
                            + (r.descriptors != null ? " (a second one)" : ""));
                }
                if (n < 12 || n > MAX_STATUS_CHUNK || (n - 4) % 8 != 0) {
                    throw new ProtocolException("BLOCK_STATUS chunk of " + n + " bytes");
                }
                ByteBuffer b = in.take((int) n);
                int context = b.getInt();
                if (context != client.facts.allocationContext()) {
                    throw new ProtocolException("BLOCK_STATUS for context " + context + ", not the negotiated "
                            + client.facts.allocationContext());
                }
                int[] d = new int[(int) (n - 4) / 4];
                for (int i = 0; i < d.length; i += 2) {
                    d[i] = b.getInt();
                    d[i + 1] = b.getInt();
                    if (d[i] == 0) {
                        throw new ProtocolException("BLOCK_STATUS descriptor of length 0 for " + r.describe());
                    }
                }
                r.descriptors = d;
                break;
            }
            case NbdWire.REPLY_TYPE_NONE:
                if (n != 0 || (flags & NbdWire.REPLY_FLAG_DONE) == 0) {
                    throw new ProtocolException("NONE chunk of " + n + " bytes" + ((flags & NbdWire.REPLY_FLAG_DONE) == 0
                            ? " without the DONE flag" : ""));
                }
                break;
            default:
                if ((type & NbdWire.REPLY_TYPE_ERROR_BIT) == 0) {
                    throw new ProtocolException("unknown reply chunk type " + type + " for " + r.describe());
                }
                errorChunk(in, r, type, n);
        }
        if ((flags & NbdWire.REPLY_FLAG_DONE) != 0) {
            finish(r, false);
        }
    }

    private static void requireRead(Request r, int type) throws ProtocolException {
        if (r.type != NbdWire.CMD_READ) {
            throw new ProtocolException("data chunk type " + type + " for " + r.describe());
        }
    }

    private void errorChunk(Inbound in, Request r, int type, long n) throws IOException {
        if (n < 6 || n > NbdWire.MAX_OPTION_REPLY) {
            throw new ProtocolException("error chunk of " + n + " bytes for " + r.describe());
        }
        ByteBuffer b = in.take((int) n);
        int error = b.getInt();
        int messageLength = Short.toUnsignedInt(b.getShort());
        boolean withOffset = type == NbdWire.REPLY_TYPE_ERROR_OFFSET;
        if (error == 0 || (type == NbdWire.REPLY_TYPE_ERROR && messageLength != n - 6)
                || (withOffset && messageLength != n - 14)) {
            throw new ProtocolException("malformed error chunk (error " + error + ", message of " + messageLength
                    + " in " + n + " bytes) for " + r.describe());
        }
        String message = messageLength > b.remaining() ? ""
                : StandardCharsets.UTF_8.decode(b.slice(b.position(), messageLength)).toString();
        if (withOffset) {
            long at = b.getLong(b.position() + messageLength);
            if (at < r.offset || at >= r.end()) {
                throw new ProtocolException("error at offset " + at + " outside " + r.describe());
            }
        }
        if (r.error == 0) {
            r.error = error;
            r.errorMessage = message.strip();
        }
    }

    /** The request's last reply arrived: check it is whole, then wake its waiter. */
    private void finish(Request r, boolean simple) throws IOException {
        if (r.error == NbdWire.ESHUTDOWN) {
            throw new EOFException("the server is shutting down (ESHUTDOWN for " + r.describe() + ")");
        }
        if (r.error == 0 && r.type == NbdWire.CMD_READ && !simple && r.coveredBytes() != r.length) {
            throw new ProtocolException(r.describe() + " ended after " + r.coveredBytes() + " of its bytes");
        }
        if (r.error == 0 && r.type == NbdWire.CMD_BLOCK_STATUS && r.descriptors == null) {
            throw new ProtocolException(r.describe() + " ended without a BLOCK_STATUS chunk");
        }
        inFlight.remove(r.cookie);
        if (violations != 0) {
            violations = 0;
        }
        if (r.error != 0) {
            r.failWithServerError();
        } else {
            r.succeed();
        }
    }

    // ---- losing and regaining the server ----

    /** The socket failed or the server broke the protocol: park its requests and reconnect. */
    private void lost(Wire ch, Throwable why) {
        List<Request> retry;
        send.lock();
        try {
            closeQuietly(ch);
            if (channel != ch || state != UP) {
                return;
            }
            state = DOWN;
            downSinceNanos = System.nanoTime();
            String dropped = dropReason;
            dropReason = null;
            downReason = dropped != null ? dropped : reason(why);
            retry = new ArrayList<>(inFlight.values());
            inFlight.clear();
            retry.sort(Comparator.comparingLong(r -> r.cookie));
            long now = System.nanoTime();
            for (int i = retry.size() - 1; i >= 0; i--) {
                Request r = retry.get(i);
                if (r.failedSinceNanos == 0) {
                    r.failedSinceNanos = now;
                }
                parked.addFirst(r); // before anything that was parked after they were sent
            }
            changed.signalAll();
        } finally {
            release();
        }
        if (state == CLOSED) {
            return;
        }
        if (why instanceof ProtocolException) {
            violations++;
            LOG.error("nbd {}: connection {} dropped: the server broke the protocol: {}; {} requests wait for a new "
                    + "connection", client.uri.server(), index, why.getMessage(), retry.size());
        } else if (downReason.contains("request-timeout")) {
            LOG.info("nbd {}: connection {} closed ({}); reconnecting", client.uri.server(), index, downReason);
        } else {
            LOG.warn("nbd {}: connection {} lost ({}); reconnecting, {} requests wait up to {} s",
                    client.uri.server(), index, downReason, retry.size(), client.options.reconnectMillis() / 1000);
        }
        reconnect(ch);
    }

    private void reconnect(Wire old) {
        long backoff = TimeUnit.MILLISECONDS.toNanos(50);
        String lastFailure = null;
        // a server that keeps lying is not reconnected to (and logged) more than about once a second
        pause(Math.min(MAX_BACKOFF_NANOS, violations == 0 ? 0 : backoff << Math.min(violations, 10)));
        while (state != CLOSED) {
            expireParked();
            Wire ch = null;
            try {
                NbdClient.Negotiated n = client.connect();
                ch = n.wire();
                if (!n.facts().sameExport(client.facts)) {
                    throw new IOException("the server now exports " + n.facts().describe() + ", not the export this one "
                            + "was (" + client.facts.describe() + "); it is not used");
                }
                int resent;
                send.lock();
                try {
                    if (state == CLOSED) {
                        closeQuietly(ch);
                        return;
                    }
                    channel = ch;
                    state = UP;
                    expired = false;
                    reconnects++;
                    startReader(ch);
                    resent = parked.size();
                    while (!parked.isEmpty()) {
                        batch.clear();
                        while (batch.size() < BATCH && !parked.isEmpty()) {
                            batch.add(parked.poll());
                        }
                        transmit(batch);
                    }
                    drainOutbox();
                    changed.signalAll();
                } finally {
                    release();
                }
                if (old != null || lastFailure != null) {
                    LOG.info("nbd {}: connection {} {}; {} waiting requests sent again", client.uri.server(), index,
                            old != null ? "reconnected after " + millisSince(downSinceNanos) + " ms" : "connected",
                            resent);
                }
                return;
            } catch (IOException | RuntimeException e) {
                closeQuietly(ch);
                String failure = reason(e);
                if (!failure.equals(lastFailure)) {
                    LOG.warn("nbd {}: connection {}: reconnecting failed ({}); retrying", client.uri.server(), index, failure);
                    lastFailure = failure;
                }
                downReason = failure;
            }
            if (!pause(backoff)) {
                return;
            }
            backoff = Math.min(backoff * 2, MAX_BACKOFF_NANOS);
        }
    }

    /** Waits {@code nanos} or until the connection closes; false when interrupted. */
    private boolean pause(long nanos) {
        send.lock();
        try {
            long left = nanos;
            while (left > 0 && state != CLOSED) {
                left = changed.awaitNanos(left);
            }
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            release();
        }
    }

    /** Fails the parked requests that have waited reconnect-timeout; from then on new ones fail at once. */
    void expireParked() {
        long window = TimeUnit.MILLISECONDS.toNanos(client.options.reconnectMillis());
        long now = System.nanoTime();
        List<Request> failed = new ArrayList<>();
        send.lock();
        try {
            if (state != DOWN) {
                return;
            }
            parked.removeIf(r -> {
                if (now - r.failedSinceNanos >= window) {
                    failed.add(r);
                    return true;
                }
                return false;
            });
            if (now - downSinceNanos >= window) {
                expired = true;
            }
        } finally {
            release();
        }
        if (!failed.isEmpty()) {
            LOG.error("nbd {}: connection {}: the server did not come back within reconnect-timeout ({} s): "
                    + "{} requests fail with EIO ({})", client.uri.server(), index, window / 1_000_000_000L,
                    failed.size(), downReason);
        }
        for (Request r : failed) {
            r.fail(new IOException(r.describe() + ": the server " + client.uri.server() + " did not come back within "
                    + "reconnect-timeout (" + downReason + ")"));
        }
    }

    /** One line for export-list. */
    String state() {
        switch (state) {
            case UP:
                return "up";
            case DOWN:
                return "down " + millisSince(downSinceNanos) / 1000 + " s (" + downReason + ")"
                        + (expired ? ", requests fail with EIO" : ", " + parkedCount() + " requests waiting");
            default:
                return "closed";
        }
    }

    long reconnects() {
        return reconnects;
    }

    private int parkedCount() {
        send.lock();
        try {
            return parked.size();
        } finally {
            release();
        }
    }

    /** Disconnects (NBD_CMD_DISC when up), fails whatever still waits and joins the threads, bounded. */
    void close() {
        List<Request> left = new ArrayList<>();
        send.lock();
        try {
            Wire ch = channel;
            if (state == UP && ch != null) {
                transmitDisconnect(ch);
            }
            state = CLOSED;
            closeQuietly(ch);
            left.addAll(parked);
            parked.clear();
            left.addAll(inFlight.values());
            inFlight.clear();
            changed.signalAll();
        } finally {
            release();
        }
        for (Request r : left) {
            r.fail(new IOException(r.describe() + ": the export is closing"));
        }
        List<Thread> all;
        synchronized (threads) {
            all = List.copyOf(threads);
        }
        for (Thread t : all) {
            if (t != Thread.currentThread()) {
                try {
                    t.join(TimeUnit.SECONDS.toMillis(5));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                if (t.isAlive()) {
                    LOG.error("nbd {}: connection {}: thread {} did not end within 5 s", client.uri.server(), index,
                            t.getName());
                }
            }
        }
    }

    private void transmitDisconnect(Wire ch) {
        ByteBuffer h = headerViews[0].clear();
        h.putInt(NbdWire.REQUEST_MAGIC).putShort((short) 0).putShort((short) NbdWire.CMD_DISC)
                .putLong(nextCookie++).putLong(0).putInt(0).flip();
        try {
            ch.writeFully(h);
        } catch (IOException e) {
            // the server is gone already: nothing to say goodbye to
        }
    }

    private void startThread(String role, Runnable body) {
        Thread t = new Thread(() -> {
            if (exportMdc != null) {
                MDC.put("export", exportMdc);
            }
            if (cpu >= 0 && Libc.pinToCpu(cpu) < 0) {
                LOG.debug("nbd {}: connection {}: cannot pin its thread to CPU {}", client.uri.server(), index, cpu);
            }
            body.run();
        }, role + "-" + index + " " + client.uri.server());
        t.setDaemon(true);
        synchronized (threads) {
            threads.removeIf(x -> !x.isAlive());
            threads.add(t);
        }
        t.start();
    }

    private static String reason(Throwable e) {
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
    }

    private static long millisSince(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - nanos);
    }

    static void closeQuietly(Wire w) {
        if (w != null) {
            closeQuietly(w.channel());
        }
    }

    static void closeQuietly(SocketChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException e) {
                // closing is all that was wanted
            }
        }
    }
}
