package org.blockfuse.uring.internal;

import java.nio.ByteBuffer;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.RequestHandler;
import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.uring.internal.FuseUringAbi.EntInOut;
import org.blockfuse.uring.internal.FuseUringAbi.ReqHeader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One ring entry: its header and payload buffers (owned for the entry's whole life) and the views
 * the request handler sees. At any time an entry is owned by exactly one party: the kernel (a FUSE
 * command is outstanding), the ring thread, or one worker; ownership moves only through the queue's
 * hand-off structures, which order the buffer accesses.
 */
public final class QueueEntry {
    private static final Logger LOG = LoggerFactory.getLogger(QueueEntry.class);
    private static final int HEADER_PAYLOAD_SZ = ReqHeader.RING_ENT_IN_OUT + EntInOut.PAYLOAD_SZ;
    private static final int HEADER_COMMIT_ID = ReqHeader.RING_ENT_IN_OUT + EntInOut.COMMIT_ID;

    final int index;
    private final ByteBuffer header;
    private final ByteBuffer inHeader;
    private final ByteBuffer opArgs;
    private final ByteBuffer payloadIn;
    private final ByteBuffer reply;
    /** The request being served (the kernel's commit_id), valid while we own the entry. */
    private long commitId;
    /** How long the last {@link #serve} took, read by the ring thread after the hand-back. */
    long serviceNanos;
    /** When the ring thread reaped this entry's request (statistics count from there, worker wait included). */
    long arrivedNanos;

    QueueEntry(int index, ByteBuffer header, ByteBuffer payload) {
        this.index = index;
        this.header = header;
        this.inHeader = header.slice(ReqHeader.IN_OUT, FuseAbi.InHeader.SIZE).order(header.order());
        this.opArgs = header.slice(ReqHeader.OP_IN, ReqHeader.OP_IN_SIZE).order(header.order());
        this.payloadIn = payload.duplicate().order(payload.order());
        this.reply = payload.duplicate().order(payload.order());
    }

    long commitId() {
        return commitId;
    }

    /**
     * Serves the request the kernel put into the buffers and leaves the reply in them: out header
     * in the header buffer, reply payload in the payload buffer, its length in payload_sz.
     * Never throws; a malformed request halts the connection and is answered with EIO.
     */
    void serve(FuseChannel channel, int qid) {
        long start = System.nanoTime();
        int result;
        long unique = inHeader.getLong(FuseAbi.InHeader.UNIQUE);
        commitId = header.getLong(HEADER_COMMIT_ID);
        int len = inHeader.getInt(FuseAbi.InHeader.LEN);
        int payloadSize = header.getInt(HEADER_PAYLOAD_SZ);
        int opLength = len - FuseAbi.InHeader.SIZE - payloadSize;
        if (commitId != unique || unique == 0) {
            // the kernel writes both from the same field: anything else cannot happen unless there is a bug
            result = violation(channel, qid, "commit_id " + commitId + " differs from unique " + unique);
        } else if (payloadSize < 0 || payloadSize > payloadIn.capacity() || opLength < 0
                || opLength > ReqHeader.OP_IN_SIZE) {
            result = violation(channel, qid, FuseAbi.Op.name(inHeader.getInt(FuseAbi.InHeader.OPCODE))
                    + " of length " + len + " with payload_sz " + payloadSize + " does not fit the entry");
        } else {
            opArgs.clear().limit(opLength);
            payloadIn.clear().limit(payloadSize);
            reply.clear();
            try {
                result = channel.handler().handle(inHeader, opArgs, payloadIn, reply, arrivedNanos);
            } catch (RuntimeException | Error e) {
                LOG.error("{}: queue {}: the request handler failed on {}", channel.name(), qid,
                        FuseAbi.Op.name(inHeader.getInt(FuseAbi.InHeader.OPCODE)), e);
                result = -Errno.EIO;
            }
        }
        if (result == RequestHandler.NO_REPLY) {
            // nothing that takes no reply travels over the rings (FORGET stays on /dev/fuse); NO_REPLY
            // here means the connection was halted. The entry still needs a commit to come back.
            result = -Errno.EIO;
        } else if (result > reply.capacity()) {
            result = violation(channel, qid, "reply of " + result + " bytes exceeds the payload buffer");
        }
        int payloadOut = Math.max(result, 0);
        header.putInt(ReqHeader.IN_OUT + FuseAbi.OutHeader.LEN, FuseAbi.OutHeader.SIZE + payloadOut);
        header.putInt(ReqHeader.IN_OUT + FuseAbi.OutHeader.ERROR, Math.min(result, 0));
        header.putLong(ReqHeader.IN_OUT + FuseAbi.OutHeader.UNIQUE, commitId);
        header.putInt(HEADER_PAYLOAD_SZ, payloadOut);
        serviceNanos = System.nanoTime() - start;
    }

    private static int violation(FuseChannel channel, int qid, String what) {
        channel.halt("io_uring queue " + qid + ": " + what);
        return -Errno.EIO;
    }
}
