package org.blockfuse.nbd.internal;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * TLS over a blocking socket with the JDK's SSLEngine (after NBD_OPT_STARTTLS). The reader
 * unwraps, the sender wraps; SSLEngine allows the two at once. What TLS itself must send while
 * reading (a key update, an alert) is wrapped under the same lock as the sender's records.
 */
final class TlsWire implements Wire {
    private final SocketChannel ch;
    private final SSLEngine engine;
    private final Object sending = new Object();
    /** Records read but not yet unwrapped: position..limit. */
    private ByteBuffer netIn;
    /** Plain bytes unwrapped but not yet read: position..limit. */
    private ByteBuffer appIn;
    private ByteBuffer netOut;

    private TlsWire(SocketChannel ch, SSLEngine engine) {
        this.ch = ch;
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        netIn = ByteBuffer.allocateDirect(packet).limit(0);
        appIn = ByteBuffer.allocateDirect(engine.getSession().getApplicationBufferSize()).limit(0);
        netOut = ByteBuffer.allocateDirect(packet);
    }

    /** Runs the TLS handshake as client on {@code ch}; the caller bounds it by closing the socket. */
    static TlsWire handshake(SocketChannel ch, SSLEngine engine) throws IOException {
        TlsWire w = new TlsWire(ch, engine);
        engine.setUseClientMode(true);
        engine.beginHandshake();
        for (;;) {
            SSLEngineResult.HandshakeStatus hs = engine.getHandshakeStatus();
            switch (hs) {
                case NEED_WRAP:
                    w.wrap(new ByteBuffer[0], 0);
                    break;
                case NEED_UNWRAP:
                case NEED_UNWRAP_AGAIN:
                    if (w.unwrapSome() < 0) {
                        throw new EOFException("the server closed the connection during the TLS handshake");
                    }
                    break;
                case NEED_TASK:
                    w.runTasks();
                    break;
                default:
                    return w; // FINISHED or NOT_HANDSHAKING
            }
        }
    }

    @Override
    public SocketChannel channel() {
        return ch;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        while (!appIn.hasRemaining()) {
            if (unwrapSome() < 0) {
                return -1;
            }
        }
        int n = Math.min(appIn.remaining(), dst.remaining());
        int limit = appIn.limit();
        appIn.limit(appIn.position() + n);
        dst.put(appIn);
        appIn.limit(limit);
        return n;
    }

    /** Unwraps one record into appIn (reading from the socket when a whole one is not there); -1 at EOF. */
    private int unwrapSome() throws IOException {
        for (;;) {
            appIn.compact();
            SSLEngineResult r;
            try {
                r = engine.unwrap(netIn, appIn);
            } finally {
                appIn.flip();
            }
            switch (r.getStatus()) {
                case OK:
                    if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                        runTasks();
                    } else if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                        wrap(new ByteBuffer[0], 0); // a post-handshake answer TLS owes the peer
                    }
                    if (r.bytesProduced() > 0 || r.bytesConsumed() > 0) {
                        return r.bytesProduced();
                    }
                    break;
                case BUFFER_UNDERFLOW:
                    if (netIn.limit() == netIn.capacity() && netIn.position() == 0) {
                        netIn = grow(netIn, engine.getSession().getPacketBufferSize());
                    }
                    netIn.compact();
                    int n;
                    try {
                        n = ch.read(netIn);
                    } finally {
                        netIn.flip();
                    }
                    if (n < 0) {
                        return -1;
                    }
                    break;
                case BUFFER_OVERFLOW:
                    appIn = grow(appIn, engine.getSession().getApplicationBufferSize() + appIn.remaining());
                    break;
                case CLOSED:
                    return -1;
                default:
                    throw new SSLException("unexpected TLS unwrap status " + r.getStatus());
            }
        }
    }

    @Override
    public void writeFully(ByteBuffer[] srcs, int count) throws IOException {
        wrap(srcs, count);
    }

    private void wrap(ByteBuffer[] srcs, int count) throws IOException {
        synchronized (sending) {
            boolean once = true;
            while (once || remaining(srcs, count) > 0) {
                once = false;
                netOut.clear();
                SSLEngineResult r = engine.wrap(srcs, 0, count, netOut);
                if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                    netOut = ByteBuffer.allocateDirect(engine.getSession().getPacketBufferSize() + netOut.capacity());
                    once = true;
                    continue;
                }
                if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                    throw new EOFException("the TLS session is closed");
                }
                netOut.flip();
                while (netOut.hasRemaining()) {
                    ch.write(netOut);
                }
                if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                    runTasks();
                }
            }
        }
    }

    private static long remaining(ByteBuffer[] srcs, int count) {
        long n = 0;
        for (int i = 0; i < count; i++) {
            n += srcs[i].remaining();
        }
        return n;
    }

    private void runTasks() {
        for (Runnable t; (t = engine.getDelegatedTask()) != null;) {
            t.run();
        }
    }

    private static ByteBuffer grow(ByteBuffer b, int atLeast) {
        ByteBuffer bigger = ByteBuffer.allocateDirect(Math.max(atLeast, 2 * b.capacity()));
        bigger.put(b); // b is position..limit of unread bytes
        return bigger.flip();
    }
}
