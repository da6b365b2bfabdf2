package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.ExportPolicy;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.SplittableRandom;

import org.blockfuse.api.RequestHandler;
import org.blockfuse.fuse.FuseAbi.AttrOut;
import org.blockfuse.fuse.FuseAbi.FallocateIn;
import org.blockfuse.fuse.FuseAbi.InHeader;
import org.blockfuse.fuse.FuseAbi.LseekIn;
import org.blockfuse.fuse.FuseAbi.Op;
import org.blockfuse.fuse.FuseAbi.ReadIn;
import org.blockfuse.fuse.FuseAbi.SetattrIn;
import org.blockfuse.fuse.FuseAbi.WriteIn;
import org.blockfuse.nativeio.Errno;

/**
 * Throws seeded random and mutated requests at {@link ExportHandler}s without a mount, through
 * both layouts, and checks every answer: a well-formed reply (a length that fits the reply
 * buffer, or a negative errno in the kernel's range), or a halt with one precise violation; no
 * exception; no byte touched outside the reply it returned (request and reply sit in arenas
 * with guard bytes around them, and the request itself must stay as it was); every range the
 * backend sees inside the image ({@link CheckedBackend}); every EIO caused by an injected
 * backend fault and every fault answered with EIO; and no allocation proportional to a length
 * field (the handler's bytes allocated per request are measured and bounded).
 */
final class RequestFuzzer {
    static final int IMAGE = 128 << 10;
    static final int IMAGE_MAX = 256 << 10;
    static final int LIMIT = 64 << 10;
    static final int REPLY_CAP = LIMIT;
    static final int MAX_ARGS = 128;
    static final int REQUEST_CAP = InHeader.SIZE + MAX_ARGS + LIMIT + 4096;
    static final int GUARD = 256;
    /**
     * Bytes the handler may allocate for one request in the split layout and in the legacy one
     * (which makes its views, about 1.3 KiB). Halts build their message; an LSEEK may allocate an
     * extent record per run it walks (at most 64 runs in these images): a few KiB at most,
     * whatever the length fields say. Served READs and WRITEs in the split layout (the hot
     * path) allocate nothing: all of them together may allocate {@link #HOT_PATH_ALLOCATION_BOUND}
     * (the odd JIT transition), not a byte per request.
     */
    static final long SPLIT_ALLOCATION_BOUND = 4096;
    static final long LEGACY_ALLOCATION_BOUND = 6144;
    static final long HARD_ALLOCATION_BOUND = 64 << 10;
    static final long HOT_PATH_ALLOCATION_BOUND = 64 << 10;
    /** Requests before the allocation bound applies (class loading, JIT, first log lines). */
    static final int WARM_UP = 50_000;
    private static final byte GUARD_BYTE = (byte) 0xA5;
    private static final byte REPLY_BYTE = (byte) 0x5A;
    private static final int WINDOW = 256;
    private static final int FULL_CHECK_EVERY = 4096;

    private static final int[] OPS = { Op.GETATTR, Op.SETATTR, Op.SETATTR, Op.OPEN, Op.READ, Op.READ, Op.READ, Op.READ,
        Op.WRITE, Op.WRITE, Op.WRITE, Op.WRITE, Op.STATFS, Op.RELEASE, Op.FSYNC, Op.FLUSH, Op.INIT, Op.INTERRUPT,
        Op.DESTROY, Op.LOOKUP, Op.FORGET, Op.BATCH_FORGET, Op.FALLOCATE, Op.FALLOCATE, Op.FALLOCATE, Op.LSEEK, Op.LSEEK };
    private static final int[] FALLOCATE_MODES = { 0, FallocateIn.KEEP_SIZE, FallocateIn.PUNCH_HOLE | FallocateIn.KEEP_SIZE,
        FallocateIn.PUNCH_HOLE, FallocateIn.ZERO_RANGE, FallocateIn.ZERO_RANGE | FallocateIn.KEEP_SIZE };

    /** Records violations without allocating. */
    static final class Recorder implements ExportHandler.ProtocolGuard {
        long count;
        String last;

        @Override
        public void violation(String what) {
            count++;
            last = what;
        }
    }

    /** One export under test: its policy, limits, image and handler. */
    static final class Target {
        final String label;
        final MemoryBackend image;
        final CheckedBackend backend;
        final ExportHandler handler;
        final Recorder guard = new Recorder();
        final int maxRead;
        final int maxWrite;

        Target(String label, ExportPolicy policy, int maxRead, int maxWrite, SplittableRandom faults, int faultOneIn) {
            this.label = label;
            this.image = new MemoryBackend(IMAGE, IMAGE_MAX, policy.writable());
            this.backend = new CheckedBackend(image, policy.writable(), IMAGE_MAX, faults, faultOneIn);
            this.handler = new ExportHandler(label, backend, policy, guard);
            if (maxRead != Integer.MAX_VALUE) {
                handler.negotiated(maxRead, maxWrite);
            }
            this.maxRead = maxRead;
            this.maxWrite = maxWrite;
        }

        @Override
        public String toString() {
            return label + " (image " + image.size() + " bytes)";
        }
    }

    /** What happened to one request, for callers that check more (the properties). */
    static final class Outcome {
        int result;
        String violation;
        long allocated;
        /** The reply's bytes (when kept): [0, result) for a reply. */
        byte[] reply;
    }

    final long seed;
    final SplittableRandom random;
    private final boolean varyBuffers;
    final Target[] targets;
    private final com.sun.management.ThreadMXBean mx =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private final ByteBuffer requestArena = ByteBuffer.allocateDirect(GUARD + REQUEST_CAP + GUARD).order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer replyArena = ByteBuffer.allocateDirect(GUARD + REPLY_CAP + GUARD).order(ByteOrder.LITTLE_ENDIAN);
    private final byte[] guardBytes = new byte[GUARD + REQUEST_CAP + GUARD];
    private final byte[] replyBytes = new byte[REPLY_CAP];
    private final ByteBuffer guardPattern;
    private final ByteBuffer replyPattern;
    /** The request as built; the handler must leave the arena's copy exactly so. */
    final byte[] built = new byte[REQUEST_CAP];
    private final ByteBuffer b = ByteBuffer.wrap(built).order(ByteOrder.LITTLE_ENDIAN);
    private final byte[] pool = new byte[1 << 20];
    private final Outcome outcome = new Outcome();
    private long served;
    private long unique = 2;

    long replies;
    long errors;
    long eio;
    long noReply;
    long violations;
    long legacy;
    long maxSplitAllocation;
    long hotPathRequests;
    long hotPathAllocation;
    long maxLegacyAllocation;
    /** Kinds of answer whose first run after warm-up passed the bound (see {@link #checkAllocation}). */
    final java.util.Set<String> firstRuns = new java.util.TreeSet<>();

    RequestFuzzer(long seed) {
        this(seed, 256, true);
    }

    /**
     * @param faultOneIn   backend calls per injected fault (0: none; the small-limits export fails four times as often)
     * @param varyBuffers  whether transports' buffers vary (larger request buffers, small or offset reply buffers)
     */
    RequestFuzzer(long seed, int faultOneIn, boolean varyBuffers) {
        this.seed = seed;
        this.varyBuffers = varyBuffers;
        this.outcome.reply = varyBuffers ? null : new byte[REPLY_CAP];
        this.random = new SplittableRandom(seed);
        SplittableRandom faults = random.split();
        this.targets = new Target[] {
            new Target("fixed", new ExportPolicy(true, false, false, 1000, 1000), LIMIT, LIMIT, faults, faultOneIn),
            new Target("growable", new ExportPolicy(true, true, false, 1000, 1000), LIMIT, LIMIT, faults, faultOneIn),
            new Target("read-only", new ExportPolicy(false, false, true, 1000, 1000), LIMIT, LIMIT, faults, faultOneIn),
            new Target("unnegotiated", new ExportPolicy(true, true, true, 0, 0), Integer.MAX_VALUE, Integer.MAX_VALUE, faults,
                    faultOneIn),
            new Target("small-limits", new ExportPolicy(true, false, false, 0, 0), 32 << 10, 16 << 10, faults, faultOneIn / 4),
        };
        Arrays.fill(guardBytes, GUARD_BYTE);
        Arrays.fill(replyBytes, REPLY_BYTE);
        guardPattern = ByteBuffer.wrap(guardBytes);
        replyPattern = ByteBuffer.wrap(replyBytes);
        requestArena.put(0, guardBytes, 0, guardBytes.length);
        replyArena.put(0, guardBytes, 0, GUARD).put(GUARD, replyBytes, 0, REPLY_CAP).put(GUARD + REPLY_CAP, guardBytes, 0, GUARD);
        ByteBuffer words = ByteBuffer.wrap(pool).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < pool.length; i += 8) {
            words.putLong(i, random.nextLong());
        }
    }

    /** Runs {@code requests} random requests; throws an AssertionError naming the seed on the first failure. */
    void run(long requests) {
        for (long i = 0; i < requests; i++) {
            Target t = targets[random.nextInt(targets.length)];
            int n = build(t);
            boolean split = random.nextBoolean();
            int argLen = -1;
            if (split && !sane && random.nextInt(4) == 0) {
                argLen = random.nextInt(Math.max(0, n - InHeader.SIZE) + 1); // a transport splitting anywhere
            }
            serve(t, n, split, argLen);
        }
    }

    // ---- building requests ----

    /** Half the requests are well formed (fields a kernel could send), so the data paths see traffic too. */
    private boolean sane;

    private long offset(Target t) {
        long size = t.image.size();
        if (sane) {
            return random.nextInt(4) == 0 ? Math.max(0, size - random.nextInt(8192)) : random.nextLong(IMAGE_MAX + 1);
        }
        switch (random.nextInt(16)) {
            case 0: return 0;
            case 1: case 2: case 3: case 4: case 5: return random.nextLong(IMAGE_MAX + 1);
            case 6: return size;
            case 7: return size - 1 - random.nextInt(4096);
            case 8: return Long.MAX_VALUE - random.nextInt(2 * LIMIT);
            case 9: return Long.MAX_VALUE;
            case 10: return -1 - random.nextInt(4096);
            case 11: return Long.MIN_VALUE;
            case 12: return 1L << (31 + random.nextInt(32));
            default: return random.nextLong();
        }
    }

    private int size32(int limit) {
        int l = limit == Integer.MAX_VALUE ? REPLY_CAP : limit;
        if (sane) {
            return random.nextInt(4) == 0 ? l : 1 + random.nextInt(random.nextBoolean() ? l : 4096);
        }
        switch (random.nextInt(14)) {
            case 0: return 0;
            case 1: return 1;
            case 2: case 3: case 4: case 5: return random.nextInt(4097);
            case 6: return l;
            case 7: return l + 1;
            case 8: return random.nextInt(l + 1);
            case 9: return -1;
            case 10: return Integer.MIN_VALUE;
            case 11: return Integer.MAX_VALUE;
            case 12: return 4096 * (1 + random.nextInt(16));
            default: return random.nextInt();
        }
    }

    private long length64() {
        if (sane) {
            return 1 + random.nextInt(IMAGE_MAX / 2);
        }
        switch (random.nextInt(10)) {
            case 0: return 0;
            case 1: case 2: case 3: return 1 + random.nextInt(IMAGE_MAX);
            case 4: return Long.MAX_VALUE;
            case 5: return Long.MAX_VALUE - random.nextInt(IMAGE_MAX);
            case 6: return -1 - random.nextInt(4096);
            case 7: return Long.MIN_VALUE;
            default: return random.nextLong();
        }
    }

    private void randomBytes(int from, int length) {
        System.arraycopy(pool, random.nextInt(pool.length - length + 1), built, from, length);
    }

    private long nextUnique() {
        unique += 2;
        switch (sane ? 63 : random.nextInt(32)) {
            case 0: return 0;
            case 1: return unique | 1; // an INTERRUPT id
            case 2: return -1;
            case 3: return Long.MIN_VALUE | unique; // FUSE_UNIQUE_RESEND
            case 4: return random.nextLong();
            default: return unique;
        }
    }

    /** Builds one request into {@link #built}; returns how many bytes of it are delivered. */
    int build(Target t) {
        sane = random.nextBoolean();
        int op = !sane && random.nextInt(5) == 0 ? (random.nextBoolean() ? random.nextInt(64) : random.nextInt())
                : OPS[random.nextInt(OPS.length)];
        if (sane && op == Op.INIT) {
            op = Op.GETATTR; // a second INIT is never sane
        }
        int argSize = Op.argSize(op);
        boolean garbage = !sane && random.nextInt(4) == 0;
        if (garbage) {
            randomBytes(0, InHeader.SIZE + MAX_ARGS); // garbage in every field, only the opcode chosen
        } else {
            Arrays.fill(built, 0, InHeader.SIZE + MAX_ARGS, (byte) 0);
            b.putLong(InHeader.UNIQUE, nextUnique());
            b.putLong(InHeader.NODEID, random.nextInt(16) == 0 ? random.nextLong() : FuseAbi.ROOT_ID);
            b.putInt(InHeader.UID, random.nextInt()).putInt(InHeader.GID, random.nextInt()).putInt(InHeader.PID, random.nextInt());
            if (random.nextInt(32) == 0) {
                b.putShort(InHeader.TOTAL_EXTLEN, (short) random.nextInt());
            }
        }
        b.putInt(InHeader.OPCODE, op);
        int a = InHeader.SIZE;
        int payload = random.nextInt(16) == 0 ? random.nextInt(257) : 0;
        if (!garbage) {
            switch (op) {
                case Op.READ:
                    b.putLong(a + ReadIn.OFFSET, offset(t)).putInt(a + ReadIn.SIZE_FIELD, size32(t.maxRead));
                    break;
                case Op.WRITE: {
                    int size = size32(t.maxWrite);
                    b.putLong(a + WriteIn.OFFSET, offset(t)).putInt(a + WriteIn.SIZE_FIELD, size);
                    payload = size >= 0 && size <= LIMIT + 4096 && (sane || random.nextInt(4) != 0) ? size : random.nextInt(4097);
                    break;
                }
                case Op.SETATTR:
                    b.putInt(a + SetattrIn.VALID, random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(16) & ~SetattrIn.FATTR_UID);
                    b.putLong(a + SetattrIn.SIZE_FIELD, random.nextInt(4) == 0 ? length64() : random.nextLong(IMAGE_MAX + IMAGE_MAX / 4));
                    b.putInt(a + SetattrIn.MODE, random.nextBoolean() ? 0100000 | random.nextInt(010000) : random.nextInt());
                    b.putInt(a + SetattrIn.UID, random.nextInt()).putInt(a + SetattrIn.GID, random.nextInt());
                    break;
                case Op.OPEN:
                    b.putInt(a + FuseAbi.OpenIn.FLAGS, random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(3));
                    break;
                case Op.FALLOCATE:
                    b.putLong(a + FallocateIn.OFFSET, offset(t)).putLong(a + FallocateIn.LENGTH, length64());
                    b.putInt(a + FallocateIn.MODE, random.nextInt(8) == 0 ? random.nextInt()
                            : FALLOCATE_MODES[random.nextInt(FALLOCATE_MODES.length)]);
                    break;
                case Op.LSEEK:
                    b.putLong(a + LseekIn.OFFSET, offset(t));
                    b.putInt(a + LseekIn.WHENCE, random.nextInt(8) == 0 ? random.nextInt() : LseekIn.SEEK_DATA + random.nextInt(2));
                    break;
                case Op.INTERRUPT:
                case Op.FORGET:
                case Op.BATCH_FORGET:
                case Op.INIT:
                    randomBytes(a, argSize);
                    break;
                default:
                    break;
            }
        }
        int len = InHeader.SIZE + argSize + payload;
        if (payload > 0) {
            randomBytes(InHeader.SIZE + argSize, payload);
        }
        b.putInt(InHeader.LEN, len);
        int n = len;
        if (!sane && random.nextInt(2) == 0) {
            switch (random.nextInt(5)) {
                case 0: // truncated: the header may still claim the whole length
                    n = random.nextInt(len);
                    if (random.nextBoolean() && n >= 4) {
                        b.putInt(InHeader.LEN, n);
                    }
                    break;
                case 1: // a lying length
                    int[] lies = { len + 1, len - 1, len + 8, 0, -1, Integer.MIN_VALUE, random.nextInt() };
                    b.putInt(InHeader.LEN, lies[random.nextInt(lies.length)]);
                    break;
                case 2: // a few bytes anywhere
                    for (int k = 1 + random.nextInt(8); k > 0; k--) {
                        built[random.nextInt(len)] = (byte) random.nextInt();
                    }
                    break;
                case 3: // trailing bytes, declared or not
                    int extra = 1 + random.nextInt(64);
                    randomBytes(len, extra);
                    n = len + extra;
                    if (random.nextBoolean()) {
                        b.putInt(InHeader.LEN, n);
                    }
                    break;
                default: // a wrong opcode for these arguments
                    b.putInt(InHeader.OPCODE, OPS[random.nextInt(OPS.length)]);
                    break;
            }
        }
        return n;
    }

    /**
     * Starts a well-formed request of {@code opcode} in {@link #built}: header, zeroed op struct,
     * {@code payload} bytes of data; fill the op struct through {@link #wire()} at 40 + field.
     * @return its length
     */
    int compose(int opcode, int payload) {
        int len = InHeader.SIZE + Op.argSize(opcode) + payload;
        Arrays.fill(built, 0, InHeader.SIZE + MAX_ARGS, (byte) 0);
        b.putInt(InHeader.LEN, len).putInt(InHeader.OPCODE, opcode).putLong(InHeader.UNIQUE, unique += 2)
                .putLong(InHeader.NODEID, FuseAbi.ROOT_ID);
        if (payload > 0) {
            randomBytes(InHeader.SIZE + Op.argSize(opcode), payload);
        }
        return len;
    }

    /** {@link #built} as little-endian words. */
    ByteBuffer wire() {
        return b;
    }

    // ---- serving and checking ----

    /**
     * Serves the first {@code n} bytes of {@link #built} on {@code t} and checks the answer.
     * @param argLen in the split layout, the op-struct length the transport cut (-1: the op's own size)
     */
    Outcome serve(Target t, int n, boolean split, int argLen) {
        int requestCap = n;
        if (!split && varyBuffers && random.nextInt(4) == 0) {
            requestCap = Math.min(REQUEST_CAP, n + random.nextInt(64)); // a transport buffer larger than the request
            randomBytes(n, requestCap - n);
        }
        requestArena.put(GUARD, built, 0, requestCap);
        int replyCap = varyBuffers && random.nextInt(64) == 0 ? random.nextInt(REPLY_CAP + 1) : REPLY_CAP;
        ByteBuffer reply = replyArena.slice(GUARD, replyCap);
        if (varyBuffers && random.nextInt(8) == 0) {
            int limit = random.nextInt(replyCap + 1);
            reply.limit(limit).position(random.nextInt(limit + 1)); // the handler must not care
        }
        ByteBuffer header = null;
        ByteBuffer args = null;
        ByteBuffer payload = null;
        ByteBuffer request = null;
        if (split) {
            int h = n >= InHeader.SIZE || varyBuffers && random.nextBoolean() ? InHeader.SIZE : n; // io_uring headers are always 40 bytes
            int rest = Math.max(0, n - InHeader.SIZE);
            int al = argLen >= 0 ? Math.min(argLen, rest) : Math.min(Op.argSize(b.getInt(InHeader.OPCODE)), rest);
            header = requestArena.slice(GUARD, h);
            args = requestArena.slice(GUARD + InHeader.SIZE, al);
            payload = requestArena.slice(GUARD + InHeader.SIZE + al, rest - al);
            if (h > n) {
                randomBytes(n, h - n);
                requestArena.put(GUARD, built, 0, h);
                requestCap = h;
            }
        } else {
            request = requestArena.slice(GUARD, requestCap).limit(n);
            legacy++;
        }
        int opcode = requestCap >= 8 ? b.getInt(InHeader.OPCODE) : 0; // as the handler sees it
        long violationsBefore = t.guard.count;
        long faultsBefore = t.backend.faults;
        long ioErrorsBefore = t.handler.ioErrors();
        int result;
        long allocated;
        try {
            long before = mx.getCurrentThreadAllocatedBytes();
            result = split ? t.handler.handle(header, args, payload, reply) : t.handler.handle(request, reply);
            allocated = mx.getCurrentThreadAllocatedBytes() - before;
        } catch (Throwable e) {
            throw failure(t, n, split, "threw " + e, e);
        }
        served++;
        long newViolations = t.guard.count - violationsBefore;
        long newFaults = t.backend.faults - faultsBefore;
        long newIoErrors = t.handler.ioErrors() - ioErrorsBefore;
        outcome.result = result;
        outcome.violation = newViolations > 0 ? t.guard.last : null;
        outcome.allocated = allocated;

        if (newViolations > 1) {
            throw failure(t, n, split, newViolations + " violations for one request", null);
        }
        int dirty;
        if (result == RequestHandler.NO_REPLY) {
            noReply++;
            dirty = 0;
            if (newViolations == 1) {
                violations++;
                String v = t.guard.last;
                boolean precise = v.startsWith(Op.name(opcode) + ": ") || v.startsWith("request of ")
                        || v.startsWith("io_uring header buffer");
                if (!precise) {
                    throw failure(t, n, split, "imprecise violation: " + v, null);
                }
            } else if (opcode != Op.FORGET && opcode != Op.BATCH_FORGET && opcode != Op.INTERRUPT) {
                throw failure(t, n, split, "no reply and no violation for " + Op.name(opcode), null);
            }
        } else {
            if (newViolations != 0) {
                throw failure(t, n, split, "a violation (" + t.guard.last + ") but a reply " + result, null);
            }
            if (result >= 0) {
                replies++;
                dirty = result;
                if (result > reply.capacity()) {
                    throw failure(t, n, split, "reply of " + result + " bytes in a " + reply.capacity() + "-byte buffer", null);
                }
                checkReply(t, n, split, opcode, result, reply);
            } else {
                errors++;
                dirty = AttrOut.SIZE; // fixed replies may be half written before an error: the kernel ignores them
                if (-result <= 0 || -result >= 512) {
                    throw failure(t, n, split, "errno " + result + " outside the kernel's range", null);
                }
                if (result == -Errno.EIO) {
                    eio++;
                }
            }
        }
        if (newFaults > 1 || (newFaults == 1) != (result == -Errno.EIO) || newIoErrors != newFaults) {
            throw failure(t, n, split, "result " + result + " after " + newFaults + " backend faults and "
                    + newIoErrors + " counted I/O errors (an EIO without a backend fault is a handler bug)", null);
        }
        long ioErrors = t.handler.ioErrors();
        boolean logged = newIoErrors > 0 && (ioErrors <= 10 || Long.bitCount(ioErrors) == 1);
        if (served > WARM_UP && !logged) {
            checkAllocation(t, n, split, opcode, result, allocated);
        }
        if (outcome.reply != null && result > 0) {
            replyArena.get(GUARD, outcome.reply, 0, result);
        }
        checkBuffers(t, n, split, requestCap, replyCap, dirty);
        return outcome;
    }

    /**
     * No allocation proportional to a length field: at most a small constant per request. A
     * string concatenation's first run bootstraps its call site (kilobytes, once per JVM), so
     * the first request of each kind of answer may pass the bound once, never the hard limit.
     */
    private void checkAllocation(Target t, int n, boolean split, int opcode, int result, long allocated) {
        long bound = split ? SPLIT_ALLOCATION_BOUND : LEGACY_ALLOCATION_BOUND;
        if (allocated > bound) {
            String kind = (split ? "split " : "legacy ") + (outcome.violation != null
                    ? outcome.violation.replaceAll("[0-9]+", "#") : Op.name(opcode) + " " + result);
            if (allocated > HARD_ALLOCATION_BOUND || !firstRuns.add(kind)) {
                throw failure(t, n, split, "allocated " + allocated + " bytes (bound " + bound + ", "
                        + (allocated > HARD_ALLOCATION_BOUND ? "hard bound " + HARD_ALLOCATION_BOUND : "not its first run") + ")", null);
            }
            return;
        }
        if (split) {
            maxSplitAllocation = Math.max(maxSplitAllocation, allocated);
            if (result >= 0 && (opcode == Op.READ || opcode == Op.WRITE)) {
                hotPathRequests++;
                hotPathAllocation += allocated;
                if (hotPathAllocation > HOT_PATH_ALLOCATION_BOUND) {
                    throw failure(t, n, split, hotPathRequests + " served READs and WRITEs allocated " + hotPathAllocation
                            + " bytes (bound " + HOT_PATH_ALLOCATION_BOUND + " in all)", null);
                }
            }
        } else {
            maxLegacyAllocation = Math.max(maxLegacyAllocation, allocated);
        }
    }

    /** The reply of a known op has that op's size and sane contents. */
    private void checkReply(Target t, int n, boolean split, int opcode, int result, ByteBuffer reply) {
        int expected;
        switch (opcode) {
            case Op.GETATTR: case Op.SETATTR: expected = AttrOut.SIZE; break;
            case Op.OPEN: expected = FuseAbi.OpenOut.SIZE; break;
            case Op.WRITE: expected = FuseAbi.WriteOut.SIZE; break;
            case Op.STATFS: expected = FuseAbi.StatfsOut.SIZE; break;
            case Op.LSEEK: expected = FuseAbi.LseekOut.SIZE; break;
            case Op.FLUSH: case Op.FSYNC: case Op.RELEASE: case Op.DESTROY: case Op.FALLOCATE: expected = 0; break;
            case Op.READ: expected = -1; break;
            default:
                throw failure(t, n, split, Op.name(opcode) + " got a reply of " + result + " bytes", null);
        }
        if (expected >= 0 && result != expected) {
            throw failure(t, n, split, Op.name(opcode) + " reply of " + result + " bytes, expected " + expected, null);
        }
        int a = InHeader.SIZE;
        if (opcode == Op.READ && result > b.getInt(a + ReadIn.SIZE_FIELD)) {
            throw failure(t, n, split, "READ returned " + result + " bytes for " + b.getInt(a + ReadIn.SIZE_FIELD), null);
        }
        if (opcode == Op.WRITE && Integer.compareUnsigned(reply.getInt(0), b.getInt(a + WriteIn.SIZE_FIELD)) > 0) {
            throw failure(t, n, split, "WRITE acknowledged " + reply.getInt(0) + " bytes", null);
        }
        if (opcode == Op.LSEEK) {
            long to = reply.getLong(0);
            if (to < b.getLong(a + LseekIn.OFFSET) || to > t.image.size()) {
                throw failure(t, n, split, "LSEEK answered " + to, null);
            }
        }
    }

    private void checkBuffers(Target t, int n, boolean split, int requestCap, int replyCap, int dirty) {
        boolean full = served % FULL_CHECK_EVERY == 0;
        // the request: untouched, and so are the guard bytes around it
        if (requestArena.slice(GUARD, requestCap).mismatch(ByteBuffer.wrap(built, 0, requestCap)) >= 0) {
            throw failure(t, n, split, "the handler wrote into the request", null);
        }
        int after = Math.min(GUARD, requestArena.capacity() - GUARD - requestCap);
        if (requestArena.slice(0, GUARD).mismatch(guardPattern.slice(0, GUARD)) >= 0
                || requestArena.slice(GUARD + requestCap, after).mismatch(guardPattern.slice(0, after)) >= 0) {
            throw failure(t, n, split, "the guard bytes around the request changed", null);
        }
        requestArena.put(GUARD, guardBytes, 0, requestCap);
        if (full && requestArena.mismatch(guardPattern.slice(0, requestArena.capacity())) >= 0) {
            throw failure(t, n, split, "the request arena changed outside the requests", null);
        }
        // the reply: nothing past its length, nothing outside its buffer
        int from = Math.min(Math.max(dirty, 0), replyCap);
        int window = full ? REPLY_CAP - from : replyCap <= 4096 ? replyCap - from : Math.min(WINDOW, replyCap - from);
        if (replyArena.slice(GUARD + from, window).mismatch(replyPattern.slice(0, window)) >= 0) {
            throw failure(t, n, split, "the handler wrote past the " + dirty + " bytes of its reply", null);
        }
        if (replyArena.slice(0, GUARD).mismatch(guardPattern.slice(0, GUARD)) >= 0
                || replyArena.slice(GUARD + REPLY_CAP, GUARD).mismatch(guardPattern.slice(0, GUARD)) >= 0) {
            throw failure(t, n, split, "the guard bytes around the reply changed", null);
        }
        replyArena.put(GUARD, replyBytes, 0, from);
    }

    private AssertionError failure(Target t, int n, boolean split, String what, Throwable cause) {
        StringBuilder hex = new StringBuilder();
        for (int i = 0; i < Math.min(n, 128); i++) {
            hex.append(String.format("%02x", built[i])).append(i % 8 == 7 ? " " : "");
        }
        AssertionError e = new AssertionError("fuzz seed " + seed + ", request #" + served + " (" + t + ", "
                + (split ? "split" : "legacy") + " layout, " + n + " bytes: " + hex + (n > 128 ? "..." : "") + "): " + what
                + "\n  rerun with -Dblockfuse.fuzz.seed=" + seed, cause);
        return e;
    }

    String summary() {
        return String.format("fuzzed %d requests with seed %d (%d legacy layout): %d replies, %d errors (%d EIO from"
                + " injected faults), %d without reply, %d halts; after warm-up, most bytes allocated for one"
                + " request: split layout %d, legacy %d; %d served split READs and WRITEs allocated %d bytes in all;"
                + " first runs above the bound: %s", served, seed, legacy, replies, errors, eio, noReply, violations,
                maxSplitAllocation, maxLegacyAllocation, hotPathRequests, hotPathAllocation, firstRuns);
    }
}
