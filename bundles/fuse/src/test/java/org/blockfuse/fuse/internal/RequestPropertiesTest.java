package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

import org.blockfuse.api.RequestHandler;
import org.blockfuse.fuse.FuseAbi.FallocateIn;
import org.blockfuse.fuse.FuseAbi.InHeader;
import org.blockfuse.fuse.FuseAbi.Op;
import org.blockfuse.fuse.FuseAbi.ReadIn;
import org.blockfuse.fuse.FuseAbi.SetattrIn;
import org.blockfuse.fuse.FuseAbi.WriteIn;
import org.blockfuse.nativeio.Errno;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

/**
 * The structured half of the protocol fuzzing: for READ, WRITE, FALLOCATE and SETATTR the
 * handler halts exactly when the fields describe a range no kernel can send, and otherwise
 * answers as the export's semantics say; arbitrary bytes in every field of any op get a
 * well-formed answer or a precise halt. Every request also passes {@link RequestFuzzer}'s
 * checks (buffers, backend ranges, errno range), through both layouts. jqwik prints the seed
 * and the shrunk sample of a failure.
 */
class RequestPropertiesTest {
    private static final long MAX = Long.MAX_VALUE;
    private final RequestFuzzer fuzzer = new RequestFuzzer(1, 0, false);

    @Provide
    Arbitrary<Long> offsets() {
        return Arbitraries.oneOf(Arbitraries.longs(), Arbitraries.longs().between(0, RequestFuzzer.IMAGE_MAX),
                Arbitraries.longs().between(MAX - 2 * RequestFuzzer.LIMIT, MAX), Arbitraries.longs().between(-4096, -1),
                Arbitraries.of(0L, MAX, Long.MIN_VALUE, 1L << 31, 1L << 32, 1L << 62));
    }

    @Provide
    Arbitrary<Integer> sizes() {
        int l = RequestFuzzer.LIMIT;
        return Arbitraries.oneOf(Arbitraries.integers(), Arbitraries.integers().between(0, l + 1),
                Arbitraries.of(0, 1, 16 << 10, (16 << 10) + 1, 32 << 10, (32 << 10) + 1, l, l + 1, -1,
                        Integer.MIN_VALUE, Integer.MAX_VALUE));
    }

    @Provide
    Arbitrary<Long> lengths() {
        return Arbitraries.oneOf(Arbitraries.longs(), Arbitraries.longs().between(0, RequestFuzzer.IMAGE_MAX),
                Arbitraries.longs().between(MAX - RequestFuzzer.IMAGE_MAX, MAX), Arbitraries.of(0L, 1L, -1L, MAX, Long.MIN_VALUE));
    }

    @Provide
    Arbitrary<Integer> opcodes() {
        return Arbitraries.oneOf(Arbitraries.integers(), Arbitraries.integers().between(0, 64),
                Arbitraries.of(Op.GETATTR, Op.SETATTR, Op.OPEN, Op.READ, Op.WRITE, Op.STATFS, Op.RELEASE, Op.FSYNC,
                        Op.FLUSH, Op.INIT, Op.INTERRUPT, Op.DESTROY, Op.LOOKUP, Op.FORGET, Op.BATCH_FORGET, Op.FALLOCATE,
                        Op.LSEEK));
    }

    private static boolean overflows(long offset, long length) {
        return offset > MAX - length;
    }

    private void assertHalt(RequestFuzzer.Outcome o, String prefix, String why) {
        assertEquals(RequestHandler.NO_REPLY, o.result, why);
        assertNotNull(o.violation, why);
        assertTrue(o.violation.startsWith(prefix), o.violation);
    }

    @Property(tries = 3000)
    void readHaltsExactlyOnImpossibleRangesAndOtherwiseReadsTheImage(@ForAll("offsets") long offset,
            @ForAll("sizes") int size, @ForAll @IntRange(min = 0, max = 4) int target, @ForAll boolean split) {
        RequestFuzzer.Target t = fuzzer.targets[target];
        int n = fuzzer.compose(Op.READ, 0);
        fuzzer.wire().putLong(InHeader.SIZE + ReadIn.OFFSET, offset).putInt(InHeader.SIZE + ReadIn.SIZE_FIELD, size);
        long imageSize = t.image.size();
        RequestFuzzer.Outcome o = fuzzer.serve(t, n, split, -1);
        int limit = Math.min(t.maxRead, RequestFuzzer.REPLY_CAP);
        if (offset < 0 || size < 0 || size > limit || overflows(offset, size)) {
            assertHalt(o, "READ: fuse_read_in.", offset + "/" + size);
            return;
        }
        int expected = offset >= imageSize ? 0 : (int) Math.min(size, imageSize - offset);
        assertEquals(expected, o.result);
        assertNull(o.violation);
        if (expected > 0) {
            assertEquals(-1, Arrays.mismatch(o.reply, 0, expected, t.image.data, (int) offset, (int) offset + expected));
        }
    }

    @Property(tries = 3000)
    void writeHaltsExactlyOnImpossibleRangesAndOtherwiseFollowsThePolicy(@ForAll("offsets") long offset,
            @ForAll("sizes") int size, @ForAll boolean honest, @ForAll @IntRange(min = 0, max = 4096) int carried,
            @ForAll @IntRange(min = 0, max = 4) int target, @ForAll boolean split) {
        RequestFuzzer.Target t = fuzzer.targets[target];
        int payload = honest && size >= 0 && size <= RequestFuzzer.LIMIT ? size : carried;
        int n = fuzzer.compose(Op.WRITE, payload);
        fuzzer.wire().putLong(InHeader.SIZE + WriteIn.OFFSET, offset).putInt(InHeader.SIZE + WriteIn.SIZE_FIELD, size);
        long before = t.image.size();
        RequestFuzzer.Outcome o = fuzzer.serve(t, n, split, -1);
        if (offset < 0 || size < 0 || size > t.maxWrite || size != payload || overflows(offset, size)) {
            assertHalt(o, "WRITE: fuse_write_in.", offset + "/" + size + "/" + payload);
            assertEquals(before, t.image.size());
            return;
        }
        assertNull(o.violation);
        boolean growable = t.label.equals("growable") || t.label.equals("unnegotiated");
        long end = offset + size;
        if (t.label.equals("read-only")) {
            assertEquals(-Errno.EACCES, o.result);
        } else if (size == 0) {
            assertEquals(FuseAbi.WriteOut.SIZE, o.result);
            assertEquals(before, t.image.size(), "writing nothing changes nothing");
        } else if (growable && end > RequestFuzzer.IMAGE_MAX) {
            assertEquals(-Errno.EIO, o.result, "the disk cannot hold it");
        } else if (!growable && offset >= before) {
            assertEquals(-Errno.ENOSPC, o.result);
        } else {
            assertEquals(FuseAbi.WriteOut.SIZE, o.result);
            long written = growable ? size : Math.min(size, before - offset);
            assertEquals(written, ByteBuffer.wrap(o.reply).order(ByteOrder.LITTLE_ENDIAN).getInt(FuseAbi.WriteOut.SIZE_FIELD));
            assertEquals(growable ? Math.max(before, end) : before, t.image.size());
            int data = InHeader.SIZE + WriteIn.SIZE;
            assertEquals(-1, Arrays.mismatch(fuzzer.built, data, data + (int) written, t.image.data, (int) offset,
                    (int) (offset + written)));
        }
    }

    @Property(tries = 3000)
    void fallocateHaltsExactlyOnImpossibleRanges(@ForAll("offsets") long offset, @ForAll("lengths") long length,
            @ForAll @IntRange(min = 0, max = 5) int modeIndex, @ForAll @IntRange(min = 0, max = 4) int target,
            @ForAll boolean split) {
        int[] modes = { 0, FallocateIn.KEEP_SIZE, FallocateIn.PUNCH_HOLE | FallocateIn.KEEP_SIZE, FallocateIn.PUNCH_HOLE,
            FallocateIn.ZERO_RANGE, 0x20 };
        RequestFuzzer.Target t = fuzzer.targets[target];
        int n = fuzzer.compose(Op.FALLOCATE, 0);
        fuzzer.wire().putLong(InHeader.SIZE + FallocateIn.OFFSET, offset).putLong(InHeader.SIZE + FallocateIn.LENGTH, length)
                .putInt(InHeader.SIZE + FallocateIn.MODE, modes[modeIndex]);
        long before = t.image.size();
        RequestFuzzer.Outcome o = fuzzer.serve(t, n, split, -1);
        if (offset < 0 || length < 0 || overflows(offset, length)) {
            assertHalt(o, "FALLOCATE: fuse_fallocate_in.", offset + "/" + length);
            assertEquals(before, t.image.size());
            return;
        }
        assertNull(o.violation);
        if (t.label.equals("read-only")) {
            assertEquals(-Errno.EACCES, o.result);
        } else if (length == 0) {
            assertEquals(-Errno.EINVAL, o.result);
        }
        assertTrue(t.image.size() >= before, "fallocate never shrinks");
    }

    @Property(tries = 2000)
    void setattrHaltsExactlyOnANegativeSize(@ForAll("lengths") long size, @ForAll int valid,
            @ForAll @IntRange(min = 0, max = 4) int target, @ForAll boolean split) {
        RequestFuzzer.Target t = fuzzer.targets[target];
        int n = fuzzer.compose(Op.SETATTR, 0);
        fuzzer.wire().putInt(InHeader.SIZE + SetattrIn.VALID, valid).putLong(InHeader.SIZE + SetattrIn.SIZE_FIELD, size)
                .putInt(InHeader.SIZE + SetattrIn.MODE, 0100600);
        long before = t.image.size();
        RequestFuzzer.Outcome o = fuzzer.serve(t, n, split, -1);
        if ((valid & SetattrIn.FATTR_SIZE) != 0 && size < 0) {
            assertHalt(o, "SETATTR: fuse_setattr_in.size ", Long.toString(size));
            assertEquals(before, t.image.size());
        } else {
            assertNull(o.violation);
        }
    }

    @Property(tries = 5000)
    void anyBytesInAnyFieldGetAWellFormedAnswerOrAPreciseHalt(@ForAll @Size(max = 200) byte[] bytes,
            @ForAll("opcodes") int opcode, @ForAll boolean honestLength, @ForAll @IntRange(min = -1, max = 160) int argLen,
            @ForAll @IntRange(min = 0, max = 4) int target, @ForAll boolean split) {
        System.arraycopy(bytes, 0, fuzzer.built, 0, bytes.length);
        if (bytes.length >= 8) {
            fuzzer.wire().putInt(InHeader.OPCODE, opcode);
            if (honestLength) {
                fuzzer.wire().putInt(InHeader.LEN, bytes.length);
            }
        }
        // serve() checks the answer itself and throws, with the bytes, on anything malformed
        fuzzer.serve(fuzzer.targets[target], bytes.length, split, argLen);
    }
}
