package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.ExportPolicy;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import org.blockfuse.api.BlockBackend;
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
import org.junit.jupiter.api.Test;

/**
 * Impossible sizes and ranges are protocol violations, op by op, in both layouts: the export
 * halts with a line naming the opcode, the field and its value, and nothing reaches the backend.
 * The largest legal value of each field still gets an ordinary answer.
 */
class ExportHandlerHardeningTest {
    private static final int SIZE = 1 << 20;
    private static final int MAX_READ = 128 << 10;
    private static final int MAX_WRITE = 64 << 10;
    private static final long MAX = Long.MAX_VALUE;
    private static final String MAX_OFFSET = " exceeds the largest file offset 9223372036854775807";
    private static final String OVERFLOWS = " overflows the largest file offset 9223372036854775807";

    /** One handler per layout, each over its own image, so the two answers can be compared. */
    private final class Pair {
        final MemoryBackend[] images = new MemoryBackend[2];
        final ExportHandler[] handlers = new ExportHandler[2];
        final List<List<String>> violations = List.of(new ArrayList<>(), new ArrayList<>());
        int halted;

        Pair(boolean writable, boolean growable, boolean negotiated) {
            for (int i = 0; i < 2; i++) {
                images[i] = new MemoryBackend(SIZE, writable);
                BlockBackend checked = new CheckedBackend(images[i], writable, 4L * SIZE, null, 0);
                handlers[i] = new ExportHandler("t", checked, new ExportPolicy(writable, growable, false, 1000, 1000),
                        violations.get(i)::add);
                if (negotiated) {
                    handlers[i].negotiated(MAX_READ, MAX_WRITE);
                }
            }
        }

        /** Serves {@code request} in the legacy layout on one handler and the split layout on the other. */
        int call(ByteBuffer request) {
            int legacy = handlers[0].handle(request.duplicate().order(ByteOrder.LITTLE_ENDIAN), reply(MAX_READ));
            int argSize = Math.min(Op.argSize(request.getInt(InHeader.OPCODE)), request.limit() - InHeader.SIZE);
            ByteBuffer header = request.slice(0, InHeader.SIZE);
            ByteBuffer args = request.slice(InHeader.SIZE, argSize);
            ByteBuffer payload = request.slice(InHeader.SIZE + argSize, request.limit() - InHeader.SIZE - argSize);
            int split = handlers[1].handle(header, args, payload, reply(MAX_READ));
            assertEquals(legacy, split, "both layouts answer alike");
            assertEquals(violations.get(0), violations.get(1), "both layouts halt alike");
            return legacy;
        }

        /** Asserts that {@code request} halts both with exactly {@code expected} and changes nothing. */
        void halts(ByteBuffer request, String expected) {
            int before = violations.get(0).size();
            byte[] image = images[0].data.clone();
            assertEquals(RequestHandler.NO_REPLY, call(request), expected);
            assertEquals(before + 1, violations.get(0).size(), "one violation");
            assertEquals(expected, violations.get(0).get(before));
            halted++;
            assertArrayEquals(image, images[0].data, "a halted request changes nothing");
            assertEquals(0, handlers[0].ioErrors() + handlers[1].ioErrors(), "a violation is no I/O error");
        }

        /** No violation but the expected ones. */
        void clean() {
            assertEquals(halted, violations.get(0).size(), violations.get(0).toString());
        }
    }

    private static ByteBuffer reply(int capacity) {
        return ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static ByteBuffer request(int opcode, Consumer<ByteBuffer> args, int payload) {
        int argSize = Op.argSize(opcode);
        int len = InHeader.SIZE + argSize + payload;
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(InHeader.LEN, len).putInt(InHeader.OPCODE, opcode).putLong(InHeader.UNIQUE, 42).putLong(InHeader.NODEID, 1);
        args.accept(b.slice(InHeader.SIZE, argSize).order(ByteOrder.LITTLE_ENDIAN));
        return b;
    }

    private static ByteBuffer read(long offset, int size) {
        return request(Op.READ, a -> a.putLong(ReadIn.OFFSET, offset).putInt(ReadIn.SIZE_FIELD, size), 0);
    }

    private static ByteBuffer write(long offset, int size, int carried) {
        return request(Op.WRITE, a -> a.putLong(WriteIn.OFFSET, offset).putInt(WriteIn.SIZE_FIELD, size), carried);
    }

    private static ByteBuffer fallocate(long offset, long length, int mode) {
        return request(Op.FALLOCATE, a -> a.putLong(FallocateIn.OFFSET, offset).putLong(FallocateIn.LENGTH, length)
                .putInt(FallocateIn.MODE, mode), 0);
    }

    private static ByteBuffer truncate(int valid, long size, int mode) {
        return request(Op.SETATTR, a -> a.putInt(SetattrIn.VALID, valid).putLong(SetattrIn.SIZE_FIELD, size)
                .putInt(SetattrIn.MODE, mode), 0);
    }

    @Test
    void readOffsetsAndSizesTheKernelCannotSend() {
        Pair p = new Pair(true, false, true);
        p.halts(read(-1, 4096), "READ: fuse_read_in.offset 18446744073709551615" + MAX_OFFSET);
        p.halts(read(Long.MIN_VALUE, 0), "READ: fuse_read_in.offset 9223372036854775808" + MAX_OFFSET);
        p.halts(read(MAX - 4095, 4096), "READ: fuse_read_in.offset 9223372036854771712 + fuse_read_in.size 4096" + OVERFLOWS);
        p.halts(read(0, -1), "READ: fuse_read_in.size 4294967295 exceeds the negotiated max_read 131072");
        p.halts(read(0, Integer.MIN_VALUE), "READ: fuse_read_in.size 2147483648 exceeds the negotiated max_read 131072");
        p.halts(read(0, MAX_READ + 1), "READ: fuse_read_in.size 131073 exceeds the negotiated max_read 131072");
        assertEquals(0, p.call(read(MAX - 4096, 4096)), "the last possible range is past the end: EOF");
        assertEquals(0, p.call(read(MAX, 0)));
        assertEquals(MAX_READ, p.call(read(0, MAX_READ)), "max_read itself is fine");
        assertEquals(100, p.call(read(SIZE - 100, MAX_READ)));
    }

    @Test
    void beforeNegotiationOnlyTheBuffersLimitReads() {
        Pair p = new Pair(true, false, false);
        assertEquals(Integer.MAX_VALUE, p.handlers[0].maxRead());
        p.halts(read(0, -1), "READ: fuse_read_in.size 4294967295 exceeds the largest signed 32-bit size");
        p.halts(read(0, MAX_READ + 1), "READ: fuse_read_in.size 131073 exceeds the 131072-byte reply buffer");
        assertEquals(MAX_READ, p.call(read(0, MAX_READ)));
    }

    @Test
    void writeOffsetsAndSizesTheKernelCannotSend() {
        Pair p = new Pair(true, true, true);
        p.halts(write(-4096, 1, 1), "WRITE: fuse_write_in.offset 18446744073709547520" + MAX_OFFSET);
        p.halts(write(MAX, 1, 1), "WRITE: fuse_write_in.offset 9223372036854775807 + fuse_write_in.size 1" + OVERFLOWS);
        p.halts(write(0, -1, 0), "WRITE: fuse_write_in.size 4294967295 exceeds the negotiated max_write 65536");
        p.halts(write(0, MAX_WRITE + 1, MAX_WRITE + 1), "WRITE: fuse_write_in.size 65537 exceeds the negotiated max_write 65536");
        p.halts(write(0, 11, 10), "WRITE: fuse_write_in.size 11 but the request carries 10 data bytes");
        p.halts(write(0, 0, 1), "WRITE: fuse_write_in.size 0 but the request carries 1 data bytes");
        assertEquals(SIZE, p.images[0].size(), "no halted write grew the image");
        assertEquals(FuseAbi.WriteOut.SIZE, p.call(write(0, MAX_WRITE, MAX_WRITE)));
        assertEquals(MAX_WRITE, p.images[0].allocated.cardinality() * MemoryBackend.BLOCK);
        assertEquals(-Errno.EIO, p.call(write(MAX - 1, 1, 1)), "the last byte is legal: the backend refuses to grow that far");
        p.clean();
    }

    @Test
    void aReadOnlyExportStillHaltsOnImpossibleRequests() {
        Pair p = new Pair(false, false, true);
        p.halts(write(-1, 1, 1), "WRITE: fuse_write_in.offset 18446744073709551615" + MAX_OFFSET);
        p.halts(fallocate(0, -1, 0), "FALLOCATE: fuse_fallocate_in.length -1 is negative");
        p.halts(truncate(SetattrIn.FATTR_SIZE, -1, 0), "SETATTR: fuse_setattr_in.size 18446744073709551615" + MAX_OFFSET);
        assertEquals(-Errno.EACCES, p.call(write(0, 1, 1)));
        assertEquals(-Errno.EACCES, p.call(fallocate(0, 1, 0)));
    }

    @Test
    void fallocateRangesTheKernelCannotSend() {
        Pair p = new Pair(true, false, true);
        int punch = FallocateIn.PUNCH_HOLE | FallocateIn.KEEP_SIZE;
        p.halts(fallocate(-1, 4096, punch), "FALLOCATE: fuse_fallocate_in.offset 18446744073709551615" + MAX_OFFSET);
        p.halts(fallocate(0, Long.MIN_VALUE, punch), "FALLOCATE: fuse_fallocate_in.length -9223372036854775808 is negative");
        p.halts(fallocate(4096, MAX - 4095, punch),
                "FALLOCATE: fuse_fallocate_in.offset 4096 + fuse_fallocate_in.length 9223372036854771712" + OVERFLOWS);
        p.halts(fallocate(MAX, 1, 0), "FALLOCATE: fuse_fallocate_in.offset 9223372036854775807 + fuse_fallocate_in.length 1" + OVERFLOWS);
        assertEquals(-Errno.EINVAL, p.call(fallocate(0, 0, 0)), "length 0: EINVAL as fallocate(2) says");
        assertEquals(0, p.call(fallocate(4096, MAX - 4096, punch)), "the largest range is legal and clamped at the end");
        assertEquals(0, p.call(fallocate(MAX - 1, 1, punch)), "wholly past the end: nothing to discard");
        assertEquals(-Errno.EIO, p.call(fallocate(SIZE, MAX - SIZE, 0)), "legal, but no disk holds it");
        assertEquals(SIZE, p.images[0].size());
        p.clean();
    }

    @Test
    void setattrSizesTheKernelCannotSend() {
        Pair p = new Pair(true, false, true);
        p.halts(truncate(SetattrIn.FATTR_SIZE | SetattrIn.FATTR_MODE, Long.MIN_VALUE, 0100400),
                "SETATTR: fuse_setattr_in.size 9223372036854775808" + MAX_OFFSET);
        ByteBuffer reply = reply(MAX_READ);
        p.handlers[0].handle(request(Op.GETATTR, a -> { }, 0), reply);
        assertEquals(0100600, reply.getInt(AttrOut.MODE), "the mode in the halted request was not applied");
        assertEquals(AttrOut.SIZE, p.call(truncate(SetattrIn.FATTR_MODE, -1, 0100400)), "size is ignored without FATTR_SIZE");
        assertEquals(AttrOut.SIZE, p.call(truncate(SetattrIn.FATTR_SIZE, 0, 0)));
        assertEquals(0, p.images[0].size());
        assertEquals(-Errno.EIO, p.call(truncate(SetattrIn.FATTR_SIZE, MAX, 0)), "legal, but no disk holds it");
        p.clean();
    }

    @Test
    void lseekTakesAnyOffsetAndSurvivesABrokenAllocationMap() {
        Pair p = new Pair(true, false, true);
        for (long offset : new long[] { -1, Long.MIN_VALUE, SIZE, MAX }) {
            assertEquals(-Errno.ENXIO, p.call(request(Op.LSEEK, a -> a.putLong(LseekIn.OFFSET, offset)
                    .putInt(LseekIn.WHENCE, LseekIn.SEEK_DATA), 0)), "lseek(2) passes any offset through: " + offset);
        }
        p.clean();
        // a backend whose extents do not contain the offset, or end before it, or overflow
        for (BlockBackend.Extent bad : new BlockBackend.Extent[] { new BlockBackend.Extent(8192, 4096, false),
                new BlockBackend.Extent(0, 4096, false), new BlockBackend.Extent(4096, MAX, false) }) {
            MemoryBackend image = new MemoryBackend(SIZE, true);
            BlockBackend broken = new CheckedBackend(image, true, SIZE, null, 0);
            List<String> violations = new ArrayList<>();
            ExportHandler h = new ExportHandler("t", new ForwardingBackend(broken) {
                @Override
                public Extent extentAt(long offset) {
                    return bad;
                }
            }, new ExportPolicy(true, false, false, 0, 0), violations::add);
            ByteBuffer seek = request(Op.LSEEK, a -> a.putLong(LseekIn.OFFSET, 4096).putInt(LseekIn.WHENCE, LseekIn.SEEK_DATA), 0);
            assertEquals(-Errno.EIO, h.handle(seek, reply(4096)), bad.toString());
            assertEquals(1, h.ioErrors());
            assertEquals(AttrOut.SIZE, h.handle(request(Op.GETATTR, a -> { }, 0), reply(4096)), "the export stays up");
            assertEquals(List.of(), violations);
        }
    }

    @Test
    void lseekOverAnEndlesslyFragmentedMapAnswersWithinABoundedWalk() {
        MemoryBackend image = new MemoryBackend(SIZE, true);
        int[] calls = {0};
        ExportHandler h = new ExportHandler("t", new ForwardingBackend(image) {
            @Override
            public Extent extentAt(long offset) {
                calls[0]++;
                return new Extent(offset, 1, false); // one-byte holes all the way: a hostile or absurd map
            }
        }, new ExportPolicy(true, false, false, 0, 0), reason -> fail(reason));
        ByteBuffer reply = reply(4096);
        ByteBuffer seekData = request(Op.LSEEK, a -> a.putLong(LseekIn.OFFSET, 0).putInt(LseekIn.WHENCE, LseekIn.SEEK_DATA), 0);
        assertEquals(FuseAbi.LseekOut.SIZE, h.handle(seekData, reply));
        assertEquals(ExportHandler.MAX_LSEEK_EXTENTS, reply.getLong(FuseAbi.LseekOut.OFFSET),
                "reported as data where the walk stopped (allowed: a hole may read as data)");
        assertEquals(ExportHandler.MAX_LSEEK_EXTENTS, calls[0], "a bounded walk, not one call per byte");
    }

    @Test
    void headerFieldsThatCannotHappen() {
        Pair p = new Pair(true, false, true);
        ByteBuffer getattr = request(Op.GETATTR, a -> { }, 0);
        getattr.putLong(InHeader.UNIQUE, 0);
        p.halts(getattr, "GETATTR: fuse_in_header.unique 0 on a request that takes a reply");
        ByteBuffer forget = request(Op.FORGET, a -> { }, 0);
        forget.putLong(InHeader.UNIQUE, 0);
        assertEquals(RequestHandler.NO_REPLY, p.call(forget), "FORGET takes no reply: its unique does not matter");
        p.halts(request(Op.INIT, a -> { }, 0), "INIT: a second INIT on an initialised connection");
        assertEquals(-Errno.ENOSYS, p.call(request(0x7fff_0000, a -> { }, 3)), "unknown opcodes: ENOSYS");
    }

    @Test
    void splitLayoutChecksTheHeaderLengthAndTheBuffers() {
        List<String> violations = new ArrayList<>();
        ExportHandler h = new ExportHandler("t", new MemoryBackend(SIZE, true), new ExportPolicy(true, false, false, 0, 0),
                violations::add);
        ByteBuffer r = read(0, 4096);
        ByteBuffer args = r.slice(InHeader.SIZE, ReadIn.SIZE);
        ByteBuffer empty = ByteBuffer.allocate(0);
        r.putInt(InHeader.LEN, 81);
        assertEquals(RequestHandler.NO_REPLY, h.handle(r.slice(0, InHeader.SIZE), args, empty, reply(8192)));
        assertEquals("READ: fuse_in_header.len 81 but header, arguments and payload hold 80 bytes", violations.get(0));
        r.putInt(InHeader.LEN, -1);
        h.handle(r.slice(0, InHeader.SIZE), args, empty, reply(8192));
        assertEquals("READ: fuse_in_header.len 4294967295 but header, arguments and payload hold 80 bytes", violations.get(1));
        r.putInt(InHeader.LEN, 80);
        assertEquals(RequestHandler.NO_REPLY, h.handle(r.slice(0, InHeader.SIZE), args, empty, reply(64)));
        assertEquals("READ: reply buffer of 64 bytes, need at least 104", violations.get(2));
        assertEquals(4096, h.handle(r.slice(0, InHeader.SIZE), args, empty, reply(8192).position(100).limit(200)),
                "the reply buffer's capacity is the room, whatever its position and limit");
        assertEquals(3, violations.size());
    }

    @Test
    void legacyViewsRefuseALengthBeyondTheirBuffer() {
        LegacyRequest views = new LegacyRequest(ByteBuffer.allocate(100));
        assertEquals("request of 101 bytes overflows the 100-byte buffer", views.accept(101));
        assertEquals("request of -5 bytes is shorter than the 40-byte header", views.accept(-5));
    }

    @Test
    void theNegotiatedLimitsComeFromInit() {
        ExportHandler h = new ExportHandler("t", new MemoryBackend(SIZE, true), new ExportPolicy(true, false, false, 0, 0),
                what -> fail(what));
        h.negotiated(new InitNegotiation.Result(45, 0, 1 << 20, 256, 0), 1 << 20);
        assertEquals(1 << 20, h.maxRead());
        assertEquals(1 << 20, h.maxWrite());
        h.negotiated(new InitNegotiation.Result(45, 0, 128 << 10, 32, 0), 1 << 20);
        assertEquals(128 << 10, h.maxRead(), "without FUSE_MAX_PAGES the kernel reads at most 32 pages");
        h.negotiated(new InitNegotiation.Result(45, 0, 1 << 20, 256, 0), 64 << 10);
        assertEquals(64 << 10, h.maxRead(), "the max_read mount option lowers it");
        assertThrows(IllegalArgumentException.class, () -> h.negotiated(0, 4096));
    }

    /** Delegates everything; tests override one call to break it. */
    private static class ForwardingBackend implements BlockBackend {
        private final BlockBackend d;

        ForwardingBackend(BlockBackend d) {
            this.d = d;
        }

        @Override public long size() { return d.size(); }
        @Override public boolean writable() { return d.writable(); }
        @Override public long allocatedBytes() throws java.io.IOException { return d.allocatedBytes(); }
        @Override public void read(long o, ByteBuffer b) throws java.io.IOException { d.read(o, b); }
        @Override public void write(long o, ByteBuffer b) throws java.io.IOException { d.write(o, b); }
        @Override public void flush() throws java.io.IOException { d.flush(); }
        @Override public void discard(long o, long l) throws java.io.IOException { d.discard(o, l); }
        @Override public void writeZeroes(long o, long l) throws java.io.IOException { d.writeZeroes(o, l); }
        @Override public void allocate(long o, long l) throws java.io.IOException { d.allocate(o, l); }
        @Override public void resize(long s) throws java.io.IOException { d.resize(s); }
        @Override public Extent extentAt(long o) throws java.io.IOException { return d.extentAt(o); }
        @Override public void close() throws java.io.IOException { d.close(); }
    }
}
