package org.blockfuse.nbd.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;

/**
 * An export on an NBD server, as a block backend. Requests are split to the server's maximum
 * payload and aligned to its minimum block size (an unaligned write becomes read-modify-write of
 * the blocks it touches, exclusive against other writes so no update is lost). Allocation comes
 * from base:allocation block status when the server has it.
 */
public final class NbdBackend implements BlockBackend {
    /** Requests without payload (zeroing) are split at this many bytes: well inside the 32-bit length. */
    private static final long MAX_NO_PAYLOAD = 1L << 30;
    /** allocatedBytes walks at most this many block-status replies; the rest counts as allocated. */
    private static final int MAX_STATUS_WALK = 256;
    private static final long ALLOCATED_TTL_NANOS = TimeUnit.SECONDS.toNanos(2);
    private static final int ZERO_CHUNK = 1 << 20;

    private final NbdClient client;
    private final ExportFacts facts;
    private final boolean writable;
    private final int align;
    private final int maxPayload;
    /** Only when the server needs aligned requests: read-modify-write exclusive, aligned writes shared. */
    private final ReentrantReadWriteLock rmw;
    /** Bumped by every change to the image, so cached allocation is known to be stale. */
    // a LongAdder: writers on every CPU bump it without sharing a cache line; only ever counted up,
    // so two sums differ whenever a change completed in between
    private final LongAdder changes = new LongAdder();
    private volatile StatusRun lastStatus;
    private volatile Allocated allocated;

    /** The descriptors of one BLOCK_STATUS reply, starting at {@code offset}, as of {@code changes}. */
    private record StatusRun(long offset, int[] descriptors, long changes, long reach) {
        static StatusRun of(long offset, int[] descriptors, long changes) {
            long at = offset;
            for (int i = 0; i < descriptors.length; i += 2) {
                at += Integer.toUnsignedLong(descriptors[i]);
            }
            return new StatusRun(offset, descriptors, changes, at);
        }

        /** The descriptor covering {@code pos} (which lies in offset..reach): where it ends and its flags. */
        Status at(long pos) {
            long at = offset;
            for (int i = 0; i < descriptors.length; i += 2) {
                at += Integer.toUnsignedLong(descriptors[i]);
                if (pos < at) {
                    return new Status(at, descriptors[i + 1]);
                }
            }
            throw new IllegalStateException("offset " + pos + " beyond the block status run to " + reach);
        }
    }

    private record Status(long end, int flags) {
    }

    private record Allocated(long bytes, long changes, long atNanos) {
    }

    /**
     * Connects to the export at {@code uri}.
     * @throws ImageException when the server cannot be reached, refuses the export, or exports it
     *                        read-only while writes were asked for
     */
    public static NbdBackend open(NbdUri uri, boolean writable, NbdOptions options) throws IOException {
        NbdClient client = NbdClient.open(uri, options);
        if (writable && client.facts.readOnly()) {
            client.close();
            throw new ImageException("nbd server " + uri.server() + " exports it read-only; export it without --writable");
        }
        return new NbdBackend(client, writable);
    }

    private NbdBackend(NbdClient client, boolean writable) {
        this.client = client;
        this.facts = client.facts;
        this.writable = writable;
        this.align = facts.minBlock();
        long max = Math.min(Integer.toUnsignedLong(facts.maxPayload()), NbdWire.DEFAULT_MAX_PAYLOAD);
        this.maxPayload = (int) (max - max % align);
        this.rmw = align > 1 ? new ReentrantReadWriteLock() : null;
    }

    @Override
    public long size() {
        return facts.size();
    }

    @Override
    public boolean writable() {
        return writable;
    }

    @Override
    public long allocatedBytes() throws IOException {
        Allocated a = allocated;
        long now = System.nanoTime();
        if (a != null && (a.changes == changes.sum() || now - a.atNanos < ALLOCATED_TTL_NANOS)) {
            return a.bytes;
        }
        if (facts.allocationContext() < 0) {
            return facts.size();
        }
        long stamp = changes.sum();
        long bytes = 0;
        long pos = 0;
        for (int walked = 0; pos < facts.size(); walked++) {
            if (walked == MAX_STATUS_WALK) {
                bytes += facts.size() - pos; // a map too fragmented to walk for a stat(): count the rest as used
                break;
            }
            StatusRun run = status(pos);
            long at = run.offset;
            for (int i = 0; i < run.descriptors.length && at < facts.size(); i += 2) {
                long len = Math.min(Integer.toUnsignedLong(run.descriptors[i]), facts.size() - at);
                if ((run.descriptors[i + 1] & NbdWire.STATE_HOLE) == 0) {
                    bytes += at + len <= pos ? 0 : at + len - Math.max(at, pos);
                }
                at += len;
            }
            pos = Math.max(at, pos + 1);
        }
        allocated = new Allocated(bytes, stamp, now);
        return bytes;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        forEachPiece(offset, dst, (pos, piece) -> {
            if (aligned(pos, piece.remaining())) {
                client.execute(Request.read(pos, piece));
            } else {
                long lo = floor(pos);
                int n = piece.remaining();
                ByteBuffer bounce = ByteBuffer.allocateDirect((int) (ceil(pos + n) - lo));
                client.execute(Request.read(lo, bounce));
                piece.put(bounce.position((int) (pos - lo)).limit((int) (pos - lo) + n));
            }
        });
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        checkWritable();
        forEachPiece(offset, src, (pos, piece) -> {
            if (aligned(pos, piece.remaining())) {
                Lock l = rmw == null ? null : rmw.readLock();
                lock(l);
                try {
                    client.execute(Request.write(pos, piece));
                } finally {
                    unlock(l);
                }
            } else {
                readModifyWrite(pos, piece);
            }
            changes.increment();
        });
    }

    private interface PieceAction {
        void apply(long pos, ByteBuffer piece) throws IOException;
    }

    /**
     * Cuts {@code buffer} (position to limit, at image offset {@code offset}) into pieces whose
     * aligned cover fits the server's maximum payload, and hands each on as a view of its bytes.
     */
    private void forEachPiece(long offset, ByteBuffer buffer, PieceAction action) throws IOException {
        long pos = offset;
        for (int p = buffer.position(); p < buffer.limit();) {
            int n = (int) Math.min(buffer.limit() - p, maxPayload - (pos - floor(pos)));
            action.apply(pos, buffer.duplicate().limit(p + n).position(p));
            p += n;
            pos += n;
        }
    }

    /** Writes {@code piece} at {@code pos} through the aligned blocks around it. */
    private void readModifyWrite(long pos, ByteBuffer piece) throws IOException {
        long lo = floor(pos);
        long hi = ceil(pos + piece.remaining());
        ByteBuffer block = ByteBuffer.allocateDirect((int) (hi - lo));
        Lock l = rmw.writeLock();
        l.lock();
        try {
            client.execute(Request.read(lo, block));
            block.position((int) (pos - lo));
            block.put(piece.duplicate());
            block.clear();
            client.execute(Request.write(lo, block));
        } finally {
            l.unlock();
        }
    }

    @Override
    public void flush() throws IOException {
        if (facts.has(NbdWire.TF_SEND_FLUSH)) {
            client.execute(Request.withoutPayload(NbdWire.CMD_FLUSH, 0, 0, 0));
        } // a server without FLUSH writes through: nothing is held back to make durable
    }

    /**
     * Punches a hole: WRITE_ZEROES that lets the server deallocate. NBD_CMD_TRIM is not used,
     * because after a TRIM the protocol leaves the range's contents undefined, and a punched hole must
     * read as zeros.
     */
    @Override
    public void discard(long offset, long length) throws IOException {
        zero(offset, length, 0);
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        zero(offset, length, NbdWire.CMD_FLAG_NO_HOLE);
    }

    private void zero(long offset, long length, int flags) throws IOException {
        checkWritable();
        long end = offset + length;
        long lo = ceil(offset);
        long hi = floor(end);
        if (lo >= hi) {
            writeZeros(offset, length); // no whole block inside: the server could not take a command for it
        } else {
            writeZeros(offset, lo - offset); // the partial first block, if any
            for (long pos = lo; pos < hi;) {
                long n = Math.min(hi - pos, MAX_NO_PAYLOAD);
                if (!zeroCommand(pos, n, flags)) {
                    writeZeros(pos, hi - pos);
                    break;
                }
                pos += n;
            }
            writeZeros(hi, end - hi); // the partial last block, if any
        }
        changes.increment();
    }

    /** WRITE_ZEROES when the server has it; false when zeros must be written instead. */
    private boolean zeroCommand(long pos, long n, int flags) throws IOException {
        if (!facts.has(NbdWire.TF_SEND_WRITE_ZEROES)) {
            return false;
        }
        Lock l = rmw == null ? null : rmw.readLock();
        lock(l);
        try {
            client.execute(Request.withoutPayload(NbdWire.CMD_WRITE_ZEROES, flags, pos, (int) n));
            return true;
        } catch (Request.ServerError e) {
            if (e.code == NbdWire.ENOTSUP) {
                return false;
            }
            throw e;
        } finally {
            unlock(l);
        }
    }

    private void writeZeros(long pos, long n) throws IOException {
        if (n <= 0) {
            return;
        }
        ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(n, ZERO_CHUNK));
        for (long done = 0; done < n;) {
            int k = (int) Math.min(n - done, zeros.capacity());
            write(pos + done, zeros.duplicate().limit(k));
            done += k;
        }
    }

    /**
     * fallocate(mode 0): NBD has no reservation, so the holes in the range that read as zeros are
     * zeroed with NO_HOLE, which makes the server allocate them. Holes that read from a backing
     * image (HOLE without ZERO) are left alone: zeroing them would change what they read.
     */
    @Override
    public void allocate(long offset, long length) throws IOException {
        checkWritable();
        if (facts.allocationContext() < 0) {
            return; // everything is reported allocated already
        }
        long end = offset + length;
        for (long pos = offset; pos < end;) {
            Extent e = extentAt(pos);
            long stop = Math.min(e.end(), end);
            if (!e.data() && zeroHole(pos)) {
                zero(pos, stop - pos, NbdWire.CMD_FLAG_NO_HOLE);
            }
            pos = stop;
        }
    }

    private boolean zeroHole(long pos) throws IOException {
        return (status(pos).at(pos).flags() & NbdWire.STATE_ZERO) != 0;
    }

    @Override
    public void resize(long newSize) throws IOException {
        throw new ImageException("an NBD export's size is the server's (" + facts.size() + " bytes); it cannot be resized here");
    }

    @Override
    public Extent extentAt(long offset) throws IOException {
        long size = facts.size();
        if (offset >= size) {
            return new Extent(offset, 0, false);
        }
        if (facts.allocationContext() < 0) {
            return new Extent(offset, size - offset, true);
        }
        Status st = status(offset).at(offset);
        return new Extent(offset, Math.min(st.end(), size) - offset, (st.flags() & NbdWire.STATE_HOLE) == 0);
    }

    /** Block status covering {@code offset}: the last reply when it still holds, else a new one. */
    private StatusRun status(long offset) throws IOException {
        StatusRun last = lastStatus;
        long stamp = changes.sum();
        if (last != null && last.changes == stamp && last.offset <= offset && offset < last.reach) {
            return last;
        }
        long from = floor(offset);
        long want = Math.min(facts.size() - from, 0xffffffffL - (align - 1));
        want -= want % align;
        Request r = Request.withoutPayload(NbdWire.CMD_BLOCK_STATUS, 0, from, (int) Math.max(want, align));
        client.execute(r);
        StatusRun run = StatusRun.of(from, r.descriptors, stamp);
        if (run.reach <= offset) {
            throw new IOException("the server's block status from " + from + " does not reach offset " + offset);
        }
        lastStatus = run;
        return run;
    }

    /** For export-list: the server and the state of each connection. */
    @Override
    public String describeConnection() {
        return client.state();
    }

    @Override
    public void close() {
        client.close();
    }

    private void checkWritable() throws IOException {
        if (!writable) {
            throw new IOException("the export is read-only");
        }
    }

    private boolean aligned(long pos, long n) {
        return align == 1 || (pos % align == 0 && n % align == 0);
    }

    private long floor(long pos) {
        return pos - pos % align;
    }

    private long ceil(long pos) {
        long r = pos % align;
        return r == 0 ? pos : pos + align - r;
    }

    private static void lock(Lock l) {
        if (l != null) {
            l.lock();
        }
    }

    private static void unlock(Lock l) {
        if (l != null) {
            l.unlock();
        }
    }
}
