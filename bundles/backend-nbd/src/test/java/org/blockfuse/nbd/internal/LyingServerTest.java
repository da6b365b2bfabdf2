package org.blockfuse.nbd.internal;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A server that lies: replies for a cookie nobody sent, READs that end short, chunks outside the
 * request, overlapping chunks, a garbled magic. Each lie drops that connection (the reason is the
 * exception the reader logs); the request goes again on a new connection, which here answers
 * truthfully, so the client gets the right bytes and never the lie. A server that always lies
 * ends in EIO within reconnect-timeout.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class LyingServerTest {
    private static final int SIZE = 1 << 20;

    enum Lie { UNKNOWN_COOKIE, SHORT_READ, CHUNK_OUTSIDE, OVERLAP, BAD_MAGIC, WRONG_CONTEXT }

    @ParameterizedTest
    @EnumSource(Lie.class)
    void aLieDropsTheConnectionAndTheRetryGetsTheTruth(Lie lie) throws Exception {
        byte[] disk = new byte[SIZE];
        new Random(lie.ordinal()).nextBytes(disk);
        try (FakeServer s = new FakeServer(disk, lie, 1)) {
            NbdBackend b = NbdBackend.open(NbdUri.parse("nbd://127.0.0.1:" + s.port() + "/"), false,
                    NbdOptions.parse(Map.of("reconnect-timeout", "10")));
            try {
                if (lie == Lie.WRONG_CONTEXT) {
                    assertTrue(b.extentAt(0).data());
                } else {
                    ByteBuffer dst = ByteBuffer.allocate(65536);
                    b.read(4096, dst);
                    assertArrayEquals(java.util.Arrays.copyOfRange(disk, 4096, 4096 + 65536), dst.array());
                }
                assertEquals(2, s.connections.get(), "one connection dropped for the lie, one that told the truth");
            } finally {
                b.close();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = Lie.class, names = {"SHORT_READ", "UNKNOWN_COOKIE"})
    void aServerThatAlwaysLiesGivesEioWithinTheWindow(Lie lie) throws Exception {
        try (FakeServer s = new FakeServer(new byte[SIZE], lie, Integer.MAX_VALUE)) {
            NbdBackend b = NbdBackend.open(NbdUri.parse("nbd://127.0.0.1:" + s.port() + "/"), false,
                    NbdOptions.parse(Map.of("reconnect-timeout", "1")));
            try {
                long t0 = System.nanoTime();
                IOException e = assertThrows(IOException.class, () -> b.read(0, ByteBuffer.allocate(4096)));
                assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 5000);
                assertTrue(e.getMessage().contains("reconnect-timeout"), e.getMessage());
            } finally {
                b.close();
            }
        }
    }

    /** A minimal newstyle NBD server over a byte array, lying on its first {@code lyingConnections}. */
    static final class FakeServer implements AutoCloseable {
        private final ServerSocketChannel listener;
        private final byte[] disk;
        private final Lie lie;
        private final int lyingConnections;
        final AtomicInteger connections = new AtomicInteger();
        private final Thread acceptor;

        FakeServer(byte[] disk, Lie lie, int lyingConnections) throws IOException {
            this.disk = disk;
            this.lie = lie;
            this.lyingConnections = lyingConnections;
            listener = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
            acceptor = new Thread(this::accept, "fake-nbd");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        int port() throws IOException {
            return ((InetSocketAddress) listener.getLocalAddress()).getPort();
        }

        private void accept() {
            try {
                for (;;) {
                    SocketChannel c = listener.accept();
                    int n = connections.incrementAndGet();
                    Thread t = new Thread(() -> serve(c, n <= lyingConnections), "fake-nbd-" + n);
                    t.setDaemon(true);
                    t.start();
                }
            } catch (IOException closed) {
                // the test is over
            }
        }

        private void serve(SocketChannel c, boolean lying) {
            try (c) {
                write(c, ByteBuffer.allocate(18).putLong(NbdWire.INIT_MAGIC).putLong(NbdWire.OPTS_MAGIC)
                        .putShort((short) (NbdWire.FLAG_FIXED_NEWSTYLE | NbdWire.FLAG_NO_ZEROES)).flip());
                read(c, 4);
                for (boolean going = false; !going;) {
                    ByteBuffer h = read(c, 16);
                    h.getLong();
                    int option = h.getInt();
                    read(c, h.getInt());
                    if (option == NbdWire.OPT_SET_META_CONTEXT) {
                        byte[] name = "base:allocation".getBytes(StandardCharsets.US_ASCII);
                        optionReply(c, option, NbdWire.REP_META_CONTEXT, ByteBuffer.allocate(4 + name.length).putInt(1).put(name).flip());
                    } else if (option == NbdWire.OPT_GO) {
                        optionReply(c, option, NbdWire.REP_INFO, ByteBuffer.allocate(12).putShort((short) NbdWire.INFO_EXPORT)
                                .putLong(disk.length).putShort((short) (NbdWire.TF_HAS_FLAGS | NbdWire.TF_READ_ONLY)).flip());
                        going = true;
                    }
                    optionReply(c, option, NbdWire.REP_ACK, ByteBuffer.allocate(0));
                }
                for (;;) {
                    ByteBuffer r = read(c, NbdWire.REQUEST_SIZE);
                    r.getInt();
                    r.getShort();
                    int type = r.getShort();
                    long cookie = r.getLong();
                    long offset = r.getLong();
                    int length = r.getInt();
                    if (type == NbdWire.CMD_DISC) {
                        return;
                    }
                    if (type == NbdWire.CMD_BLOCK_STATUS) {
                        int context = lying && lie == Lie.WRONG_CONTEXT ? 9 : 1;
                        chunk(c, NbdWire.REPLY_FLAG_DONE, NbdWire.REPLY_TYPE_BLOCK_STATUS, cookie,
                                ByteBuffer.allocate(12).putInt(context).putInt(length).putInt(0).flip());
                        continue;
                    }
                    if (!lying || lie == Lie.WRONG_CONTEXT) {
                        data(c, NbdWire.REPLY_FLAG_DONE, cookie, offset, length);
                        continue;
                    }
                    switch (lie) {
                        case UNKNOWN_COOKIE -> data(c, NbdWire.REPLY_FLAG_DONE, cookie + 1000, offset, length);
                        case SHORT_READ -> data(c, NbdWire.REPLY_FLAG_DONE, cookie, offset, length - 512);
                        case CHUNK_OUTSIDE -> data(c, NbdWire.REPLY_FLAG_DONE, cookie, offset + 512, length);
                        case OVERLAP -> {
                            data(c, 0, cookie, offset, length / 2 + 512);
                            data(c, NbdWire.REPLY_FLAG_DONE, cookie, offset + length / 2, length / 2);
                        }
                        case BAD_MAGIC -> write(c, ByteBuffer.allocate(20).putInt(0x12345678).flip());
                        default -> throw new IllegalStateException();
                    }
                }
            } catch (IOException gone) {
                // the client dropped this connection, as it should after a lie
            }
        }

        private void data(SocketChannel c, int flags, long cookie, long offset, int length) throws IOException {
            ByteBuffer p = ByteBuffer.allocate(8 + length).putLong(offset);
            long end = Math.min(disk.length, offset + length);
            p.put(disk, (int) offset, (int) (end - offset));
            chunk(c, flags, NbdWire.REPLY_TYPE_OFFSET_DATA, cookie, p.position(p.capacity()).flip());
        }

        private static void chunk(SocketChannel c, int flags, int type, long cookie, ByteBuffer payload) throws IOException {
            write(c, ByteBuffer.allocate(20).putInt(NbdWire.STRUCTURED_REPLY_MAGIC).putShort((short) flags)
                    .putShort((short) type).putLong(cookie).putInt(payload.remaining()).flip());
            write(c, payload);
        }

        private static void optionReply(SocketChannel c, int option, int type, ByteBuffer data) throws IOException {
            write(c, ByteBuffer.allocate(20).putLong(NbdWire.OPTION_REPLY_MAGIC).putInt(option).putInt(type)
                    .putInt(data.remaining()).flip());
            write(c, data);
        }

        private static ByteBuffer read(SocketChannel c, int n) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(n);
            while (b.hasRemaining()) {
                if (c.read(b) < 0) {
                    throw new IOException("closed");
                }
            }
            return b.flip();
        }

        private static void write(SocketChannel c, ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                c.write(b);
            }
        }

        @Override
        public void close() throws IOException {
            listener.close();
        }
    }
}
