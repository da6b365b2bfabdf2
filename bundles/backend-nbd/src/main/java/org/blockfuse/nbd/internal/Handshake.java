package org.blockfuse.nbd.internal;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

import javax.net.ssl.SSLException;

import org.blockfuse.api.ImageException;

/**
 * The fixed newstyle handshake on a fresh connection: structured replies, the base:allocation
 * metadata context, then NBD_OPT_GO with the export name (asking for the block size constraints).
 * Blocking reads; the caller bounds the whole exchange by closing the channel at its deadline.
 */
final class Handshake {
    private static final String BASE_ALLOCATION = "base:allocation";
    private final String exportName;
    private final NbdTls tls;
    private Wire ch;

    private Handshake(SocketChannel ch, String exportName, NbdTls tls) {
        this.ch = Wire.plain(ch);
        this.exportName = exportName;
        this.tls = tls;
    }

    /** The negotiated stream (TLS when asked for) and what the server said. */
    record Result(Wire wire, ExportFacts facts) {
    }

    /**
     * Negotiates the export on {@code ch}, first upgrading it to TLS when {@code tls} is not null.
     * @throws ImageException when the server refuses (no such export, TLS required, ...): a one-line reason
     * @throws ProtocolException when the server breaks the protocol
     */
    static Result negotiate(SocketChannel ch, String exportName, NbdTls tls) throws IOException {
        Handshake h = new Handshake(ch, exportName, tls);
        ExportFacts facts = h.run();
        return new Result(h.ch, facts);
    }

    private ExportFacts run() throws IOException {
        ByteBuffer greeting = read(18);
        long magic = greeting.getLong();
        long style = greeting.getLong();
        if (magic != NbdWire.INIT_MAGIC) {
            throw new ProtocolException("the peer is not an NBD server (greeting 0x" + Long.toHexString(magic) + ")");
        }
        if (style == NbdWire.OLDSTYLE_MAGIC) {
            throw new ImageException("the server speaks only the oldstyle handshake, which names no export; "
                    + "use a newstyle server (qemu-nbd, nbdkit)");
        }
        if (style != NbdWire.OPTS_MAGIC) {
            throw new ProtocolException("unknown handshake style 0x" + Long.toHexString(style));
        }
        int serverFlags = Short.toUnsignedInt(greeting.getShort());
        if ((serverFlags & NbdWire.FLAG_FIXED_NEWSTYLE) == 0) {
            throw new ImageException("the server does not offer the fixed newstyle handshake");
        }
        int clientFlags = NbdWire.CLIENT_FIXED_NEWSTYLE | (serverFlags & NbdWire.FLAG_NO_ZEROES);
        write(ByteBuffer.allocate(4).putInt(0, clientFlags));
        if (tls != null) {
            startTls();
        }

        boolean structured = option(NbdWire.OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0)) == NbdWire.REP_ACK;
        int context = structured ? allocationContext() : -1;
        return go(structured, context);
    }

    /** NBD_OPT_STARTTLS, then the TLS handshake: every later byte, options included, is encrypted. */
    private void startTls() throws IOException {
        int r = option(NbdWire.OPT_STARTTLS, ByteBuffer.allocate(0));
        if (r != NbdWire.REP_ACK) {
            throw new ImageException("the server does not offer TLS (" + NbdWire.optionError(r) + "); use nbd://");
        }
        try {
            ch = TlsWire.handshake(ch.channel(), tls.engine());
        } catch (SSLException e) {
            throw new ImageException("TLS with the server failed: " + e.getMessage(), e);
        }
    }

    /** Sends one option whose only reply is ACK or an error; returns that reply's type. */
    private int option(int option, ByteBuffer data) throws IOException {
        sendOption(option, data);
        Reply r = reply(option);
        if (r.type == NbdWire.REP_ACK || (r.type & NbdWire.REP_ERR_BIT) != 0) {
            return r.type;
        }
        throw new ProtocolException("unexpected reply 0x" + Integer.toHexString(r.type) + " to option " + option);
    }

    /** SET_META_CONTEXT base:allocation; the id the server gave it, or -1 when it has none. */
    private int allocationContext() throws IOException {
        byte[] name = exportName.getBytes(StandardCharsets.UTF_8);
        byte[] query = BASE_ALLOCATION.getBytes(StandardCharsets.US_ASCII);
        ByteBuffer data = ByteBuffer.allocate(4 + name.length + 4 + 4 + query.length);
        data.putInt(name.length).put(name).putInt(1).putInt(query.length).put(query).flip();
        sendOption(NbdWire.OPT_SET_META_CONTEXT, data);
        int id = -1;
        for (;;) {
            Reply r = reply(NbdWire.OPT_SET_META_CONTEXT);
            if (r.type == NbdWire.REP_META_CONTEXT) {
                if (r.data.remaining() < 4) {
                    throw new ProtocolException("NBD_REP_META_CONTEXT of " + r.data.remaining() + " bytes");
                }
                int given = r.data.getInt();
                String what = StandardCharsets.UTF_8.decode(r.data).toString();
                if (!what.equals(BASE_ALLOCATION)) {
                    throw new ProtocolException("the server gave context '" + what + "', which was not asked for");
                }
                id = given;
            } else if (r.type == NbdWire.REP_ACK) {
                return id;
            } else if ((r.type & NbdWire.REP_ERR_BIT) != 0) {
                return -1; // no block status: SEEK_DATA reports everything as data
            } else {
                throw new ProtocolException("unexpected reply 0x" + Integer.toHexString(r.type) + " to SET_META_CONTEXT");
            }
        }
    }

    private ExportFacts go(boolean structured, int context) throws IOException {
        byte[] name = exportName.getBytes(StandardCharsets.UTF_8);
        ByteBuffer data = ByteBuffer.allocate(4 + name.length + 2 + 2);
        data.putInt(name.length).put(name).putShort((short) 1).putShort((short) NbdWire.INFO_BLOCK_SIZE).flip();
        sendOption(NbdWire.OPT_GO, data);
        long size = -1;
        int flags = 0;
        int min = 1;
        int preferred = 4096;
        int max = NbdWire.DEFAULT_MAX_PAYLOAD;
        for (;;) {
            Reply r = reply(NbdWire.OPT_GO);
            if (r.type == NbdWire.REP_INFO) {
                if (r.data.remaining() < 2) {
                    throw new ProtocolException("NBD_REP_INFO of " + r.data.remaining() + " bytes");
                }
                int info = Short.toUnsignedInt(r.data.getShort());
                if (info == NbdWire.INFO_EXPORT) {
                    if (r.data.remaining() != 10) {
                        throw new ProtocolException("NBD_INFO_EXPORT of " + (r.data.remaining() + 2) + " bytes, not 12");
                    }
                    size = r.data.getLong();
                    flags = Short.toUnsignedInt(r.data.getShort());
                } else if (info == NbdWire.INFO_BLOCK_SIZE) {
                    if (r.data.remaining() != 12) {
                        throw new ProtocolException("NBD_INFO_BLOCK_SIZE of " + (r.data.remaining() + 2) + " bytes, not 14");
                    }
                    min = r.data.getInt();
                    preferred = r.data.getInt();
                    max = r.data.getInt();
                    checkBlockSizes(min, preferred, max);
                } // other information (name, description) is not needed
            } else if (r.type == NbdWire.REP_ACK) {
                break;
            } else if ((r.type & NbdWire.REP_ERR_BIT) != 0) {
                String message = StandardCharsets.UTF_8.decode(r.data).toString().strip();
                throw new ImageException("the server refused export '" + exportName + "': " + NbdWire.optionError(r.type)
                        + (message.isEmpty() ? "" : " (" + message + ")")
                        + (r.type == NbdWire.REP_ERR_TLS_REQD ? "; use nbds://" : ""));
            } else {
                throw new ProtocolException("unexpected reply 0x" + Integer.toHexString(r.type) + " to NBD_OPT_GO");
            }
        }
        if (size < 0) {
            throw new ProtocolException("NBD_OPT_GO ended without NBD_INFO_EXPORT (the export's size)");
        }
        if ((flags & NbdWire.TF_HAS_FLAGS) == 0) {
            flags = 0; // the other bits mean nothing without HAS_FLAGS
        }
        if (size % min != 0) {
            throw new ProtocolException("export size " + size + " is not a multiple of the minimum block size " + min);
        }
        return new ExportFacts(size, flags, min, preferred, max, structured, context);
    }

    /** The protocol's rules: powers of two, min ≤ 64 KiB, min ≤ preferred ≤ max (max a multiple of min or "none"). */
    private static void checkBlockSizes(int min, int preferred, int max) throws ProtocolException {
        boolean ok = min > 0 && Integer.bitCount(min) == 1 && min <= 64 * 1024
                && preferred >= min && Integer.bitCount(preferred) == 1
                && Integer.toUnsignedLong(max) >= preferred && (max == -1 || Integer.toUnsignedLong(max) % min == 0);
        if (!ok) {
            throw new ProtocolException("impossible block sizes: minimum " + min + ", preferred " + preferred
                    + ", maximum " + Integer.toUnsignedString(max));
        }
    }

    private record Reply(int type, ByteBuffer data) {
    }

    private void sendOption(int option, ByteBuffer data) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(16);
        header.putLong(NbdWire.OPTS_MAGIC).putInt(option).putInt(data.remaining()).flip();
        write(header);
        write(data);
    }

    private Reply reply(int option) throws IOException {
        ByteBuffer h = read(20);
        long magic = h.getLong();
        int echoed = h.getInt();
        int type = h.getInt();
        int length = h.getInt();
        if (magic != NbdWire.OPTION_REPLY_MAGIC) {
            throw new ProtocolException("option reply magic 0x" + Long.toHexString(magic));
        }
        if (echoed != option) {
            throw new ProtocolException("reply for option " + echoed + " while option " + option + " was asked");
        }
        if (length < 0 || length > NbdWire.MAX_OPTION_REPLY) {
            throw new ProtocolException("option reply of " + Integer.toUnsignedString(length) + " bytes");
        }
        return new Reply(type, read(length));
    }

    private ByteBuffer read(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new EOFException("the server closed the connection during the handshake");
            }
        }
        return b.flip();
    }

    private void write(ByteBuffer b) throws IOException {
        ch.writeFully(b);
    }
}
