package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.ExportPolicy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.RequestHandler;
import org.blockfuse.fuse.RequestStats;
import org.blockfuse.fuse.FuseAbi.AttrOut;
import org.blockfuse.fuse.FuseAbi.FallocateIn;
import org.blockfuse.fuse.FuseAbi.InHeader;
import org.blockfuse.fuse.FuseAbi.LseekIn;
import org.blockfuse.fuse.FuseAbi.Op;
import org.blockfuse.fuse.FuseAbi.OpenIn;
import org.blockfuse.fuse.FuseAbi.OpenOut;
import org.blockfuse.fuse.FuseAbi.ReadIn;
import org.blockfuse.fuse.FuseAbi.SetattrIn;
import org.blockfuse.fuse.FuseAbi.StatfsOut;
import org.blockfuse.fuse.FuseAbi.WriteIn;
import org.blockfuse.fuse.FuseAbi.WriteOut;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the FUSE ops of one exported file (the root inode) over a {@link BlockBackend}, with the
 * semantics of QEMU's storage-daemon FUSE export. Each op is a small method returning the reply
 * length or a negative errno. Transport-neutral: both layouts end in {@link #dispatch}.
 */
public final class ExportHandler implements RequestHandler {
    private static final Logger LOG = LoggerFactory.getLogger(ExportHandler.class);
    /** The MDC key naming the export in every log line of its threads (pattern {@code %X{export}}). */
    public static final String MDC_EXPORT = "export";
    private static final int S_IFREG = 0100000;
    private static final int O_ACCMODE = 3;
    private static final int WRITE_BITS = 0222;
    private static final int GROUP_OTHER_BITS = 0077;
    private static final int BLOCK_SIZE = 4096;
    private static final long ATTR_VALID_SECONDS = 1;
    private static final int SECTOR = 512;
    private static final int EDQUOT = 122;
    /** Extents one LSEEK walks before it answers conservatively (see {@link #lseek}). */
    static final int MAX_LSEEK_EXTENTS = 1024;
    /** The largest fixed-size reply (fuse_attr_out); every reply buffer holds at least this. */
    private static final int MIN_REPLY_BUFFER = AttrOut.SIZE;
    /** Before {@link #negotiated} is called, READ and WRITE sizes are limited only by the buffers. */
    private static final int UNLIMITED = Integer.MAX_VALUE;

    /** Called when the kernel breaks the protocol; the export halts instead of guessing. */
    public interface ProtocolGuard {
        void violation(String what);
    }

    private final String name;
    private final BlockBackend backend;
    private final ExportPolicy policy;
    private final ProtocolGuard guard;
    /** The export's statistics (kept across connections), or null when its statistics are off. */
    private final RequestStats stats;
    private final AtomicInteger mode;
    private final AtomicInteger uid;
    private final AtomicInteger gid;
    private final long createdSeconds = System.currentTimeMillis() / 1000;
    /** Resizes take the write lock so no read or write sees the size change under it. */
    private final ReentrantReadWriteLock resizeLock = new ReentrantReadWriteLock();
    private final AtomicLong ioErrors = new AtomicLong();
    /** Counted by every transport thread at once: a LongAdder keeps them off one cache line. */
    private final LongAdder requests = new LongAdder();
    /** OPENs answered minus RELEASEs seen: the files clients hold open on this connection. */
    private final AtomicInteger openFiles = new AtomicInteger();
    /** The image registered as this connection's backing file, or 0: opens are then passed through. */
    private volatile int backingId;
    private final LongAdder passthroughOpens = new LongAdder();
    /** The negotiated request size limits; set once after INIT, before any transport attaches. */
    private volatile int maxRead = UNLIMITED;
    private volatile int maxWrite = UNLIMITED;

    public ExportHandler(String name, BlockBackend backend, ExportPolicy policy, ProtocolGuard guard) {
        this(name, backend, policy, guard, null);
    }

    public ExportHandler(String name, BlockBackend backend, ExportPolicy policy, ProtocolGuard guard,
            RequestStats stats) {
        this.name = name;
        this.backend = backend;
        this.policy = policy;
        this.guard = guard;
        this.stats = stats != null && stats.enabled() ? stats : null;
        this.mode = new AtomicInteger(policy.initialMode());
        this.uid = new AtomicInteger(policy.uid());
        this.gid = new AtomicInteger(policy.gid());
    }

    /**
     * Tells the handler the sizes agreed at INIT; a READ or WRITE above them is then a protocol
     * violation. Call before a transport attaches (until then only the buffers bound the sizes).
     * @param maxRead  the largest READ the kernel may send: min(mount option max_read, max_pages x 4096)
     * @param maxWrite the negotiated max_write
     */
    public void negotiated(int maxRead, int maxWrite) {
        if (maxRead <= 0 || maxWrite <= 0) {
            throw new IllegalArgumentException("max_read " + maxRead + " and max_write " + maxWrite + " must be positive");
        }
        this.maxRead = maxRead;
        this.maxWrite = maxWrite;
    }

    /**
     * {@link #negotiated(int, int)} from the INIT agreement and the max_read mount option: the
     * kernel sends no READ above max_read or above max_pages pages, and no WRITE above max_write.
     */
    public void negotiated(InitNegotiation.Result init, int mountMaxRead) {
        negotiated((int) Math.min(mountMaxRead, (long) init.maxPages() * InitNegotiation.PAGE), init.maxWrite());
    }

    public int maxRead() {
        return maxRead;
    }

    public int maxWrite() {
        return maxWrite;
    }

    /**
     * Carries the owner and mode set by chmod/chown over to a new connection of the same export,
     * so a switch of connection changes nothing a client can see.
     */
    public void takeOwnershipFrom(ExportHandler previous) {
        mode.set(previous.mode.get());
        uid.set(previous.uid.get());
        gid.set(previous.gid.get());
    }

    /**
     * From now on every OPEN is answered with FUSE passthrough to backing file {@code id} (registered
     * on the connection's /dev/fuse fd): the kernel then reads and writes the image itself.
     */
    public void passThrough(int id) {
        backingId = id;
    }

    /** Opens answered with passthrough so far (their reads and writes never reach the server). */
    public long passthroughOpens() {
        return passthroughOpens.sum();
    }

    /** Files open on this connection now. */
    public int openFiles() {
        return openFiles.get();
    }

    public long requests() {
        return requests.sum();
    }

    public long ioErrors() {
        return ioErrors.get();
    }

    /** Legacy layout; allocates its views (DeviceLoop keeps a {@link LegacyRequest} per buffer instead). */
    @Override
    public int handle(ByteBuffer request, ByteBuffer reply) {
        if (request.capacity() < InHeader.SIZE) {
            return violation("request of " + request.limit() + " bytes is shorter than the 40-byte header");
        }
        LegacyRequest r = new LegacyRequest(request);
        String wrong = r.accept(request.limit());
        if (wrong != null) {
            return violation(wrong);
        }
        return dispatch(r.opcode(), r.header(), r.args(), r.payload(), reply, System.nanoTime());
    }

    @Override
    public int handle(ByteBuffer inHeader, ByteBuffer opArgs, ByteBuffer payload, ByteBuffer reply) {
        return handle(inHeader, opArgs, payload, reply, System.nanoTime());
    }

    @Override
    public int handle(ByteBuffer inHeader, ByteBuffer opArgs, ByteBuffer payload, ByteBuffer reply, long arrivedNanos) {
        inHeader.order(ByteOrder.LITTLE_ENDIAN);
        if (inHeader.remaining() < InHeader.SIZE) {
            return violation("io_uring header buffer holds fewer than 40 bytes");
        }
        int opcode = inHeader.getInt(InHeader.OPCODE);
        int argSize = Op.argSize(opcode);
        if (opArgs.limit() < argSize) {
            return violation(Op.name(opcode) + ": " + opArgs.limit() + " argument bytes, expected " + argSize);
        }
        int declared = inHeader.getInt(InHeader.LEN);
        long carried = (long) InHeader.SIZE + opArgs.limit() + payload.limit();
        if (declared != carried) {
            return violation(Op.name(opcode) + ": fuse_in_header.len " + Integer.toUnsignedString(declared)
                    + " but header, arguments and payload hold " + carried + " bytes");
        }
        return dispatch(opcode, inHeader, opArgs, payload, reply, arrivedNanos);
    }

    private int violation(String what) {
        guard.violation(what);
        return NO_REPLY;
    }

    /** {@code field} holds a file offset above 2^63-1, which no loff_t can be. */
    private int beyondMaxOffset(int opcode, String field, long value) {
        return violation(Op.name(opcode) + ": " + field + " " + Long.toUnsignedString(value)
                + " exceeds the largest file offset " + Long.MAX_VALUE);
    }

    /** {@code offset + length} passes 2^63-1 (the kernel's VFS refuses such ranges before asking us). */
    private int overflows(int opcode, String offsetField, long offset, String lengthField, long length) {
        return violation(Op.name(opcode) + ": " + offsetField + " " + offset + " + " + lengthField + " " + length
                + " overflows the largest file offset " + Long.MAX_VALUE);
    }

    /** A u32 size field above the negotiated limit, or at 2^31 or more (which no limit allows). */
    private int sizeTooLarge(int opcode, String field, int value, String limitName, int limit) {
        return violation(Op.name(opcode) + ": " + field + " " + Integer.toUnsignedString(value) + " exceeds "
                + (limit == UNLIMITED ? "the largest signed 32-bit size" : "the negotiated " + limitName + " " + limit));
    }

    private int dispatch(int opcode, ByteBuffer header, ByteBuffer args, ByteBuffer payload, ByteBuffer reply,
            long arrivedNanos) {
        requests.increment();
        boolean tracing = LOG.isDebugEnabled();
        if (stats == null && !tracing) {
            return serve(opcode, header, args, payload, reply);
        }
        if (stats != null) {
            stats.begin();
        }
        int result = RequestHandler.NO_REPLY;
        try {
            result = serve(opcode, header, args, payload, reply);
        } finally {
            if (stats != null) {
                int bytes = result <= 0 ? 0 : opcode == Op.READ ? result : opcode == Op.WRITE ? args.getInt(WriteIn.SIZE_FIELD) : 0;
                stats.end(opcode, result, bytes, arrivedNanos);
            }
        }
        if (tracing) {
            trace(opcode, header, args, result, arrivedNanos);
        }
        return result;
    }

    /** log:set DEBUG org.blockfuse.fuse: one line per request. */
    private void trace(int opcode, ByteBuffer header, ByteBuffer args, int result, long arrivedNanos) {
        long micros = (System.nanoTime() - arrivedNanos) / 1000;
        String range = opcode == Op.READ || opcode == Op.WRITE
                ? " offset " + args.getLong(ReadIn.OFFSET) + " length " + Integer.toUnsignedString(args.getInt(ReadIn.SIZE_FIELD))
                : "";
        String outcome = result == RequestHandler.NO_REPLY ? "no reply" : result < 0 ? Errno.name(-result) : result + " bytes";
        LOG.debug("{}: {} unique {}{} -> {} in {} us", name, Op.name(opcode), header.getLong(InHeader.UNIQUE), range,
                outcome, micros);
    }

    private int serve(int opcode, ByteBuffer header, ByteBuffer args, ByteBuffer payload, ByteBuffer reply) {
        reply.clear().order(ByteOrder.LITTLE_ENDIAN); // its capacity is the room for the reply
        args.order(ByteOrder.LITTLE_ENDIAN);
        if (reply.capacity() < MIN_REPLY_BUFFER) {
            // the transports give every request a reply buffer of max_write: cannot happen unless there is a bug
            return violation(Op.name(opcode) + ": reply buffer of " + reply.capacity() + " bytes, need at least "
                    + MIN_REPLY_BUFFER);
        }
        if (header.getLong(InHeader.UNIQUE) == 0 && takesReply(opcode)) {
            // unique 0 marks a notification: a reply to it would not reach any request
            return violation(Op.name(opcode) + ": fuse_in_header.unique 0 on a request that takes a reply");
        }
        try {
            switch (opcode) {
                case Op.GETATTR: return getattr(reply);
                case Op.SETATTR: return setattr(header, args, reply);
                case Op.OPEN: return open(args, reply);
                case Op.READ: return read(args, reply);
                case Op.WRITE: return write(args, payload, reply);
                case Op.FLUSH:
                case Op.FSYNC: return flush();
                case Op.RELEASE:
                    openFiles.decrementAndGet();
                    return 0;
                case Op.FALLOCATE: return fallocate(args);
                case Op.LSEEK: return lseek(args, reply);
                case Op.STATFS: return statfs(reply);
                case Op.DESTROY: return 0;
                case Op.LOOKUP: return -Errno.ENOENT;
                case Op.FORGET:
                case Op.BATCH_FORGET:
                case Op.INTERRUPT: return NO_REPLY; // interrupted requests finish normally
                case Op.INIT: return violation("INIT: a second INIT on an initialised connection");
                default: return -Errno.ENOSYS;
            }
        } catch (IOException e) {
            return ioError(Op.name(opcode), e); // the backend's trouble: EIO for this request, export up
        } catch (RuntimeException e) {
            // a bug (ours or a backend's): answering would guess, so this connection halts, loudly
            LOG.error("{}: {} (unique {}) failed with an unexpected exception; halting the connection", name,
                    Op.name(opcode), header.getLong(InHeader.UNIQUE), e);
            return violation(Op.name(opcode) + ": unexpected " + e);
        }
    }

    private static boolean takesReply(int opcode) {
        return opcode != Op.FORGET && opcode != Op.BATCH_FORGET && opcode != Op.INTERRUPT;
    }

    private int ioError(String op, Exception e) {
        if (e instanceof NativeException && (((NativeException) e).errno() == Errno.ENOSPC
                || ((NativeException) e).errno() == EDQUOT)) {
            return -((NativeException) e).errno(); // a full host disk is the client's business, not an I/O error
        }
        long n = ioErrors.incrementAndGet();
        if (n <= 10 || Long.bitCount(n) == 1) { // first ten, then every power of two: no log flood
            LOG.error("{}: {} failed, answering EIO (error #{}): {}", name, op, n, e.toString());
        }
        return -Errno.EIO;
    }

    /** GETATTR: one regular file; size from the backend, st_blocks from its allocated bytes. */
    private int getattr(ByteBuffer reply) throws IOException {
        fillAttr(reply);
        return AttrOut.SIZE;
    }

    private void fillAttr(ByteBuffer out) throws IOException {
        for (int i = 0; i < AttrOut.SIZE; i += 8) {
            out.putLong(i, 0);
        }
        out.putLong(AttrOut.ATTR_VALID, ATTR_VALID_SECONDS);
        out.putLong(AttrOut.INO, FuseAbi.ROOT_ID);
        out.putLong(AttrOut.SIZE_FIELD, backend.size());
        out.putLong(AttrOut.BLOCKS, (backend.allocatedBytes() + SECTOR - 1) / SECTOR);
        out.putLong(AttrOut.ATIME, createdSeconds);
        out.putLong(AttrOut.MTIME, createdSeconds);
        out.putLong(AttrOut.CTIME, createdSeconds);
        out.putInt(AttrOut.MODE, S_IFREG | mode.get());
        out.putInt(AttrOut.NLINK, 1);
        out.putInt(AttrOut.UID, uid.get());
        out.putInt(AttrOut.GID, gid.get());
        out.putInt(AttrOut.BLKSIZE, BLOCK_SIZE);
    }

    /**
     * SETATTR (QEMU's rules): size resizes a writable image; mode may change the permission bits,
     * but never adds a write bit to a read-only export (EROFS) and never opens the file to group or
     * others without allow-other (EPERM: the kernel would not deliver their requests anyway, and the
     * bits would lie); owner changes only with allow-other; times are not stored. Everything is
     * checked before anything changes, so a refused request leaves the file as it was.
     */
    private int setattr(ByteBuffer header, ByteBuffer args, ByteBuffer reply) throws IOException {
        int valid = args.getInt(SetattrIn.VALID);
        if ((valid & SetattrIn.FATTR_SIZE) != 0 && args.getLong(SetattrIn.SIZE_FIELD) < 0) {
            // truncate(2) refuses negative lengths before the kernel asks us
            return beyondMaxOffset(Op.SETATTR, "fuse_setattr_in.size", args.getLong(SetattrIn.SIZE_FIELD));
        }
        int ignored = SetattrIn.FATTR_FH | SetattrIn.FATTR_LOCKOWNER | SetattrIn.FATTR_KILL_SUIDGID
                | SetattrIn.FATTR_CTIME;
        int supported = SetattrIn.FATTR_SIZE | SetattrIn.FATTR_MODE
                | (policy.allowOther() ? SetattrIn.FATTR_UID | SetattrIn.FATTR_GID : 0);
        if ((valid & ~(supported | ignored)) != 0) {
            return -Errno.EOPNOTSUPP;
        }
        if ((valid & SetattrIn.FATTR_MODE) != 0) {
            int newMode = args.getInt(SetattrIn.MODE);
            if ((newMode & 0170000) != 0 && (newMode & 0170000) != S_IFREG) {
                return -Errno.EINVAL;
            }
            if (!policy.allowOther() && (newMode & GROUP_OTHER_BITS) != 0) {
                return -Errno.EPERM;
            }
            if (!policy.writable() && (newMode & WRITE_BITS) != 0) {
                return -Errno.EROFS;
            }
        }
        if ((valid & SetattrIn.FATTR_SIZE) != 0) {
            if (!policy.writable()) {
                return -Errno.EACCES;
            }
            long newSize = args.getLong(SetattrIn.SIZE_FIELD);
            resizeLock.writeLock().lock();
            try {
                backend.resize(newSize);
            } finally {
                resizeLock.writeLock().unlock();
            }
        }
        if ((valid & SetattrIn.FATTR_MODE) != 0) {
            mode.set(args.getInt(SetattrIn.MODE) & 07777);
        }
        if ((valid & SetattrIn.FATTR_UID) != 0) {
            uid.set(args.getInt(SetattrIn.UID));
        }
        if ((valid & SetattrIn.FATTR_GID) != 0) {
            gid.set(args.getInt(SetattrIn.GID));
        }
        return getattr(reply);
    }

    /** OPEN: writing a read-only export is refused even for root (who bypasses mode bits). */
    private int open(ByteBuffer args, ByteBuffer reply) {
        int flags = args.getInt(OpenIn.FLAGS);
        if (!policy.writable() && (flags & O_ACCMODE) != 0) {
            return -Errno.EACCES;
        }
        reply.putLong(OpenOut.FH, 0);
        int id = backingId;
        // page cache: kept across opens (every write reaches the file through this connection, which
        // updates the cache, so nothing makes it stale; otherwise each open would drop it)
        int openFlags = OpenOut.FOPEN_PARALLEL_DIRECT_WRITES | (id > 0 ? OpenOut.FOPEN_PASSTHROUGH
                : policy.directIo() ? OpenOut.FOPEN_DIRECT_IO : OpenOut.FOPEN_KEEP_CACHE);
        reply.putInt(OpenOut.OPEN_FLAGS, openFlags);
        reply.putInt(OpenOut.BACKING_ID, id);
        if (id > 0) {
            passthroughOpens.increment();
        }
        openFiles.incrementAndGet();
        return OpenOut.SIZE;
    }

    /**
     * READ: data goes straight into the reply buffer; short only at the end of the image.
     * The kernel never sends an offset above 2^63-1, a range that overflows it, or more than
     * max_read bytes: any of those halts.
     */
    private int read(ByteBuffer args, ByteBuffer reply) throws IOException {
        long offset = args.getLong(ReadIn.OFFSET);
        int size = args.getInt(ReadIn.SIZE_FIELD);
        int limit = maxRead;
        if (offset < 0) {
            return beyondMaxOffset(Op.READ, "fuse_read_in.offset", offset);
        }
        if (size < 0 || size > limit) {
            return sizeTooLarge(Op.READ, "fuse_read_in.size", size, "max_read", limit);
        }
        if (size > reply.capacity()) {
            return violation("READ: fuse_read_in.size " + size + " exceeds the " + reply.capacity() + "-byte reply buffer");
        }
        if (offset > Long.MAX_VALUE - size) {
            return overflows(Op.READ, "fuse_read_in.offset", offset, "fuse_read_in.size", size);
        }
        resizeLock.readLock().lock();
        try {
            long end = backend.size();
            if (offset >= end) {
                return 0;
            }
            int n = (int) Math.min(size, end - offset);
            backend.read(offset, reply.clear().limit(n));
            return n;
        } finally {
            resizeLock.readLock().unlock();
        }
    }

    /**
     * WRITE: data is taken straight from the request buffer. Past the end, a growable export grows;
     * otherwise a write crossing the end is shortened and one wholly beyond it fails with ENOSPC,
     * as on a full fixed-size device. A size other than the data carried, above max_write, or an
     * offset or range beyond 2^63-1 halts.
     */
    private int write(ByteBuffer args, ByteBuffer payload, ByteBuffer reply) throws IOException {
        long offset = args.getLong(WriteIn.OFFSET);
        int size = args.getInt(WriteIn.SIZE_FIELD);
        int limit = maxWrite;
        if (offset < 0) {
            return beyondMaxOffset(Op.WRITE, "fuse_write_in.offset", offset);
        }
        if (size < 0 || size > limit) {
            return sizeTooLarge(Op.WRITE, "fuse_write_in.size", size, "max_write", limit);
        }
        if (size != payload.remaining()) {
            return violation("WRITE: fuse_write_in.size " + size + " but the request carries " + payload.remaining()
                    + " data bytes");
        }
        if (offset > Long.MAX_VALUE - size) {
            return overflows(Op.WRITE, "fuse_write_in.offset", offset, "fuse_write_in.size", size);
        }
        if (!policy.writable()) {
            return -Errno.EACCES;
        }
        if (size == 0) {
            return written(reply, 0); // as write(2) of nothing: no change, even past the end
        }
        long end = offset + size;
        int n = size;
        resizeLock.readLock().lock();
        try {
            long current = backend.size();
            if (end > current && !policy.growable()) {
                if (offset >= current) {
                    return -Errno.ENOSPC;
                }
                n = (int) (current - offset);
            }
            if (end > current && policy.growable()) {
                resizeLock.readLock().unlock();
                try {
                    grow(end);
                } finally {
                    resizeLock.readLock().lock();
                }
            }
            backend.write(offset, payload.limit(payload.position() + n));
        } finally {
            resizeLock.readLock().unlock();
        }
        return written(reply, n);
    }

    private static int written(ByteBuffer reply, int n) {
        reply.putInt(WriteOut.SIZE_FIELD, n);
        reply.putInt(4, 0);
        return WriteOut.SIZE;
    }

    private void grow(long end) throws IOException {
        resizeLock.writeLock().lock();
        try {
            if (backend.size() < end) {
                backend.resize(end);
            }
        } finally {
            resizeLock.writeLock().unlock();
        }
    }

    /** FLUSH (every close) and FSYNC: the backend's flush, i.e. fdatasync of the image. */
    private int flush() throws IOException {
        if (policy.writable()) {
            backend.flush();
        }
        return 0;
    }

    /**
     * FALLOCATE: 0 allocates, and past the end it is an explicit resize (like truncate, as QEMU):
     * it grows any writable export, growable or not, and the new range is allocated. Only writes
     * past the end depend on growable. PUNCH_HOLE|KEEP_SIZE discards, ZERO_RANGE writes zeroes
     * (growing only a growable export); the rest is not supported. fallocate(2) refuses a negative
     * offset or length and a range past 2^63-1 before the kernel asks us: those halt.
     */
    private int fallocate(ByteBuffer args) throws IOException {
        long offset = args.getLong(FallocateIn.OFFSET);
        long length = args.getLong(FallocateIn.LENGTH);
        int fmode = args.getInt(FallocateIn.MODE);
        if (offset < 0) {
            return beyondMaxOffset(Op.FALLOCATE, "fuse_fallocate_in.offset", offset);
        }
        if (length < 0) {
            return violation("FALLOCATE: fuse_fallocate_in.length " + length + " is negative");
        }
        if (offset > Long.MAX_VALUE - length) {
            return overflows(Op.FALLOCATE, "fuse_fallocate_in.offset", offset, "fuse_fallocate_in.length", length);
        }
        if (!policy.writable()) {
            return -Errno.EACCES;
        }
        if (length == 0) {
            return -Errno.EINVAL;
        }
        boolean keepSize = (fmode & FallocateIn.KEEP_SIZE) != 0;
        int op = fmode & ~FallocateIn.KEEP_SIZE;
        long end = offset + length;
        if (op == FallocateIn.PUNCH_HOLE) {
            if (!keepSize) {
                return -Errno.EOPNOTSUPP;
            }
            return clamped(offset, end, true);
        }
        if (op != 0 && op != FallocateIn.ZERO_RANGE) {
            return -Errno.EOPNOTSUPP;
        }
        if (!keepSize && end > backend.size()) {
            if (op == FallocateIn.ZERO_RANGE && !policy.growable()) {
                return -Errno.ENOSPC;
            }
            grow(end);
        }
        resizeLock.readLock().lock();
        try {
            long stop = Math.min(end, backend.size());
            if (stop > offset) {
                if (op == FallocateIn.ZERO_RANGE) {
                    backend.writeZeroes(offset, stop - offset);
                } else {
                    backend.allocate(offset, stop - offset);
                }
            }
            return 0;
        } finally {
            resizeLock.readLock().unlock();
        }
    }

    private int clamped(long offset, long end, boolean discard) throws IOException {
        resizeLock.readLock().lock();
        try {
            long stop = Math.min(end, backend.size());
            if (stop > offset && discard) {
                backend.discard(offset, stop - offset);
            }
            return 0;
        } finally {
            resizeLock.readLock().unlock();
        }
    }

    /**
     * LSEEK: SEEK_DATA/SEEK_HOLE from the backend's allocation map; the end is an implicit hole.
     * Any offset is legal here (lseek(2) passes a negative one through: ENXIO, as for a local file).
     * Each extent must contain the position asked for and end after it, without overflow, or the
     * backend is broken (EIO): the walk always moves forward and ends.
     */
    private int lseek(ByteBuffer args, ByteBuffer reply) throws IOException {
        long offset = args.getLong(LseekIn.OFFSET);
        int whence = args.getInt(LseekIn.WHENCE);
        if (whence != LseekIn.SEEK_DATA && whence != LseekIn.SEEK_HOLE) {
            return -Errno.EINVAL;
        }
        long size = backend.size();
        if (offset < 0 || offset >= size) {
            return -Errno.ENXIO;
        }
        boolean wantData = whence == LseekIn.SEEK_DATA;
        long pos = offset;
        for (int walked = 0; pos < size; walked++) {
            if (walked == MAX_LSEEK_EXTENTS) {
                // a map that fragmented (or hostile) gets a bounded answer: "data here" is always
                // allowed for SEEK_DATA (a hole may be reported as data), EOF always for SEEK_HOLE
                reply.putLong(FuseAbi.LseekOut.OFFSET, wantData ? pos : size);
                return FuseAbi.LseekOut.SIZE;
            }
            BlockBackend.Extent e = backend.extentAt(pos);
            if (e.length() <= 0 || e.offset() > pos || e.offset() > Long.MAX_VALUE - e.length() || e.end() <= pos) {
                throw new IOException("backend returned extent " + e + " for offset " + pos);
            }
            if (e.data() == wantData) {
                reply.putLong(FuseAbi.LseekOut.OFFSET, pos);
                return FuseAbi.LseekOut.SIZE;
            }
            pos = e.end();
        }
        if (wantData) {
            return -Errno.ENXIO;
        }
        reply.putLong(FuseAbi.LseekOut.OFFSET, size);
        return FuseAbi.LseekOut.SIZE;
    }

    /** STATFS: the image as a filesystem of one file, in 4 KiB blocks. */
    private int statfs(ByteBuffer reply) throws IOException {
        for (int i = 0; i < StatfsOut.SIZE; i += 8) {
            reply.putLong(i, 0);
        }
        long blocks = (backend.size() + BLOCK_SIZE - 1) / BLOCK_SIZE;
        long used = (backend.allocatedBytes() + BLOCK_SIZE - 1) / BLOCK_SIZE;
        long free = Math.max(0, blocks - used);
        reply.putLong(StatfsOut.BLOCKS, blocks);
        reply.putLong(StatfsOut.BFREE, free);
        reply.putLong(StatfsOut.BAVAIL, free);
        reply.putLong(StatfsOut.FILES, 1);
        reply.putInt(StatfsOut.BSIZE, BLOCK_SIZE);
        reply.putInt(StatfsOut.NAMELEN, 255);
        reply.putInt(StatfsOut.FRSIZE, BLOCK_SIZE);
        return StatfsOut.SIZE;
    }
}
