package org.blockfuse.nbd.internal;

import java.io.IOException;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.blockfuse.api.ImageException;
import org.blockfuse.nativeio.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The connections of one export to its server, and the watchdog that bounds every wait on them:
 * connecting and the handshake (connect-timeout), each request (request-timeout) and the time
 * requests wait for a lost server (reconnect-timeout).
 */
final class NbdClient implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NbdClient.class);

    final NbdUri uri;
    final NbdOptions options;
    /** TLS for nbds:// URIs, else null. */
    private final NbdTls tls;
    /** What the first handshake said; every reconnection must find the same export. */
    final ExportFacts facts;
    private final NbdConnection[] connections;
    private final AtomicInteger next = new AtomicInteger();
    private final boolean localReaders;
    private final Watchdog watchdog;
    /** The waiter's own bound: well past request-timeout, a reconnect window and two connects. */
    private final long waitBoundNanos;
    private volatile boolean closed;

    record Negotiated(Wire wire, ExportFacts facts) {
    }

    private NbdClient(NbdUri uri, NbdOptions options, NbdTls tls, ExportFacts facts, int count, Watchdog watchdog) {
        this.uri = uri;
        this.watchdog = watchdog;
        this.waitBoundNanos = TimeUnit.MILLISECONDS.toNanos(options.requestMillis() + options.reconnectMillis()
                + 2 * options.connectMillis()) + TimeUnit.SECONDS.toNanos(30);
        this.tls = tls;
        this.options = options;
        this.facts = facts;
        this.connections = new NbdConnection[count];
        int cpus = Runtime.getRuntime().availableProcessors();
        // with a connection for every CPU, each reader stays on one CPU and a request goes to the
        // connection whose reader shares its caller's CPU: the reply then wakes the caller with a
        // local switch, not a wake-up across CPUs (which costs tens of microseconds on a VM)
        this.localReaders = cpus > 1 && count >= cpus;
        for (int i = 0; i < count; i++) {
            connections[i] = new NbdConnection(this, i + 1, localReaders ? i % cpus : -1);
        }
    }

    /**
     * Connects to the server and negotiates the export; more connections follow when the server
     * allows several. The first connection must succeed: a server that is not there is the
     * operator's to fix, and is said in one line.
     */
    static NbdClient open(NbdUri uri, NbdOptions options) throws IOException {
        NbdTls tls = NbdTls.of(uri, options);
        Watchdog watchdog = Watchdog.start("nbd-watchdog " + uri.server());
        Negotiated n;
        try {
            n = connect(uri, options, tls, watchdog);
        } catch (ImageException e) {
            watchdog.stop();
            throw new ImageException("nbd server " + uri.server() + ": " + e.getMessage(), e);
        } catch (IOException | RuntimeException e) {
            watchdog.stop();
            throw new ImageException("nbd server " + uri.server() + " cannot be reached: " + e.getMessage(), e);
        }
        ExportFacts facts = n.facts();
        int count = facts.has(NbdWire.TF_CAN_MULTI_CONN) ? options.connections() : 1;
        if (count < options.connections()) {
            LOG.info("nbd {}: the server does not allow several connections (no multi-conn); using one",
                    uri.server());
        }
        NbdClient c = new NbdClient(uri, options, tls, facts, count, watchdog);
        c.connections[0].start(n.wire(), null);
        for (int i = 1; i < count; i++) {
            Negotiated more = null;
            try {
                more = c.connect();
                if (!more.facts().sameExport(facts)) {
                    throw new IOException("connection " + (i + 1) + " found another export: " + more.facts().describe());
                }
                c.connections[i].start(more.wire(), null);
            } catch (IOException e) {
                NbdConnection.closeQuietly(more == null ? null : more.wire());
                c.connections[i].start(null, e.getMessage()); // requests go to the others until it comes up
            }
        }
        watchdog.every(c::tick);
        return c;
    }

    /** A new negotiated socket to the server, bounded by connect-timeout. */
    Negotiated connect() throws IOException {
        if (closed) {
            throw new IOException("the export is closing");
        }
        return connect(uri, options, tls, watchdog);
    }

    private static Negotiated connect(NbdUri uri, NbdOptions options, NbdTls tls, Watchdog watchdog) throws IOException {
        SocketAddress address = uri.address();
        SocketChannel ch = address instanceof UnixDomainSocketAddress ? SocketChannel.open(StandardProtocolFamily.UNIX)
                : SocketChannel.open();
        Watchdog.Guard guard = watchdog.closeAt(ch, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.connectMillis()));
        try {
            ch.connect(address);
            if (!(address instanceof UnixDomainSocketAddress)) {
                ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            }
            Handshake.Result h = Handshake.negotiate(ch, uri.exportName(), tls);
            if (!guard.cancel()) {
                throw new IOException("no handshake within connect-timeout (" + options.connectMillis() / 1000 + " s)");
            }
            return new Negotiated(h.wire(), h.facts());
        } catch (IOException | RuntimeException e) {
            boolean timedOut = !guard.cancel();
            NbdConnection.closeQuietly(ch);
            if (timedOut) {
                throw new IOException("no handshake within connect-timeout (" + options.connectMillis() / 1000 + " s)", e);
            }
            throw e;
        }
    }

    /** Sends {@code r} on the next connection that is up (any, when none is) and waits for its end. */
    void execute(Request r) throws IOException {
        NbdConnection c = pick();
        c.submit(r);
        if (!r.await(System.nanoTime() + waitBoundNanos)) {
            // the watchdog ends every request well before this; reaching it is a bug, said loudly
            LOG.error("nbd {}: {} did not end within {} s although every wait is bounded; abandoning it",
                    uri.server(), r.describe(), TimeUnit.NANOSECONDS.toSeconds(waitBoundNanos));
            c.abandon(r);
            throw new IOException(r.describe() + ": no end within " + TimeUnit.NANOSECONDS.toSeconds(waitBoundNanos) + " s");
        }
        r.rethrow();
    }

    private NbdConnection pick() {
        int n = connections.length;
        int start = Math.floorMod(next.getAndIncrement(), n);
        int cpu = localReaders ? Libc.currentCpu() : -1;
        for (int i = 0; cpu >= 0 && i < n; i++) {
            NbdConnection c = connections[(start + i) % n];
            if (c.cpu == cpu && c.up()) {
                return c;
            }
        }
        for (int i = 0; i < n; i++) {
            NbdConnection c = connections[(start + i) % n];
            if (c.up()) {
                return c;
            }
        }
        return connections[start];
    }

    /** Every watchdog tick: request-timeout and reconnect-timeout on each connection. */
    private void tick() {
        long now = System.nanoTime();
        for (NbdConnection c : connections) {
            c.checkTimeouts(now);
            c.expireParked();
        }
    }

    /** For export-list: the server and its connections. */
    String state() {
        List<String> down = new ArrayList<>();
        int up = 0;
        long reconnects = 0;
        for (NbdConnection c : connections) {
            reconnects += c.reconnects();
            if (c.up()) {
                up++;
            } else {
                down.add("connection " + c.index + " " + c.state());
            }
        }
        return "server " + uri.server() + ": " + up + " of " + connections.length + " connections up"
                + (reconnects > 0 ? ", " + reconnects + " reconnects" : "") + (down.isEmpty() ? "" : "; " + String.join("; ", down));
    }

    @Override
    public void close() {
        closed = true;
        watchdog.closeAll(); // a reconnection half-way through its connect or handshake ends now
        for (NbdConnection c : connections) {
            c.close();
        }
        watchdog.stop();
    }
}
