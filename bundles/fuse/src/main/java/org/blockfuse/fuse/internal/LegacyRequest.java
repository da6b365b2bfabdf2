package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.blockfuse.fuse.FuseAbi.InHeader;
import org.blockfuse.fuse.FuseAbi.Op;

/**
 * Splits one request read from /dev/fuse (in header, op struct, data, back to back) into the
 * three views the handler takes. The views over a transport's buffer are made once, one per
 * op-struct size, so splitting a request allocates nothing.
 */
public final class LegacyRequest {
    /** The largest op struct we read (fuse_setattr_in). */
    private static final int MAX_ARG = FuseAbi.SetattrIn.SIZE;

    private final ByteBuffer buffer;
    private final ByteBuffer header;
    private final ByteBuffer[] args = new ByteBuffer[MAX_ARG + 1];
    private final ByteBuffer[] payloads = new ByteBuffer[MAX_ARG + 1];
    private int opcode;
    private int argSize;

    public LegacyRequest(ByteBuffer buffer) {
        this.buffer = buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        this.header = view(0, InHeader.SIZE);
    }

    private ByteBuffer view(int from, int to) {
        return buffer.duplicate().limit(to).position(from).slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Takes the request of {@code length} bytes now in the buffer.
     * @return null, or what is wrong with it (a protocol violation)
     */
    public String accept(int length) {
        if (length < InHeader.SIZE) {
            return "request of " + length + " bytes is shorter than the 40-byte header";
        }
        if (length > buffer.capacity()) {
            // read() never returns more than it was offered: cannot happen unless there is a bug
            return "request of " + length + " bytes overflows the " + buffer.capacity() + "-byte buffer";
        }
        int declared = buffer.getInt(InHeader.LEN);
        opcode = buffer.getInt(InHeader.OPCODE);
        if (declared != length) {
            return Op.name(opcode) + ": header says " + declared + " bytes, read() returned " + length;
        }
        argSize = Op.argSize(opcode);
        if (length < InHeader.SIZE + argSize) {
            return Op.name(opcode) + ": " + length + " bytes cannot hold its " + argSize + "-byte arguments";
        }
        if (args[argSize] == null) {
            args[argSize] = view(InHeader.SIZE, InHeader.SIZE + argSize);
            payloads[argSize] = view(InHeader.SIZE + argSize, buffer.capacity());
        }
        args[argSize].clear();
        payloads[argSize].clear().limit(length - InHeader.SIZE - argSize);
        header.clear();
        return null;
    }

    public int opcode() {
        return opcode;
    }

    public ByteBuffer header() {
        return header;
    }

    public ByteBuffer args() {
        return args[argSize];
    }

    public ByteBuffer payload() {
        return payloads[argSize];
    }
}
