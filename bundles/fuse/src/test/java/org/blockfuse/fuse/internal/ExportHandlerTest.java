package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.ExportPolicy;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import org.blockfuse.api.RequestHandler;
import org.blockfuse.fuse.FuseAbi.AttrOut;
import org.blockfuse.fuse.FuseAbi.InHeader;
import org.blockfuse.fuse.FuseAbi.Op;
import org.blockfuse.nativeio.Errno;
import org.junit.jupiter.api.Test;

/** The request handler op by op, in the legacy layout, including malformed requests. */
class ExportHandlerTest {
    private static final int SIZE = 1 << 20;
    private final List<String> violations = new ArrayList<>();
    private final ByteBuffer reply = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
    private long unique = 2;

    private ExportHandler handler(MemoryBackend b, boolean writable, boolean growable, boolean allowOther) {
        return new ExportHandler("t", b, new ExportPolicy(writable, growable, allowOther, 1000, 1000), violations::add);
    }

    /** Builds a request: header, the op struct (filled by {@code args}), then {@code payload} bytes. */
    private ByteBuffer request(int opcode, java.util.function.Consumer<ByteBuffer> args, byte[] payload) {
        int argSize = Op.argSize(opcode);
        int len = InHeader.SIZE + argSize + payload.length;
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(InHeader.LEN, len).putInt(InHeader.OPCODE, opcode).putLong(InHeader.UNIQUE, unique += 2)
                .putLong(InHeader.NODEID, 1);
        ByteBuffer a = b.duplicate().position(InHeader.SIZE).limit(InHeader.SIZE + argSize).slice().order(ByteOrder.LITTLE_ENDIAN);
        args.accept(a);
        b.position(InHeader.SIZE + argSize);
        b.put(payload);
        return b.clear();
    }

    private int call(RequestHandler h, ByteBuffer req) {
        reply.clear();
        return h.handle(req, reply);
    }

    private ByteBuffer read(long offset, int size) {
        return request(Op.READ, a -> a.putLong(FuseAbi.ReadIn.OFFSET, offset).putInt(FuseAbi.ReadIn.SIZE_FIELD, size), new byte[0]);
    }

    private ByteBuffer write(long offset, byte[] data) {
        return request(Op.WRITE, a -> a.putLong(FuseAbi.WriteIn.OFFSET, offset).putInt(FuseAbi.WriteIn.SIZE_FIELD, data.length), data);
    }

    @Test
    void getattrDescribesOneRegularFile() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        b.allocated.set(0, 3);
        assertEquals(AttrOut.SIZE, call(handler(b, true, false, false), request(Op.GETATTR, a -> { }, new byte[0])));
        assertEquals(SIZE, reply.getLong(AttrOut.SIZE_FIELD));
        assertEquals(0100600, reply.getInt(AttrOut.MODE));
        assertEquals(3 * 4096 / 512, reply.getLong(AttrOut.BLOCKS));
        assertEquals(1000, reply.getInt(AttrOut.UID));
        assertEquals(1, reply.getInt(AttrOut.NLINK));
        call(handler(b, false, false, true), request(Op.GETATTR, a -> { }, new byte[0]));
        assertEquals(0100400, reply.getInt(AttrOut.MODE), "read-only: allow-other does not open the file to others (QEMU)");
    }

    @Test
    void readIsShortOnlyAtTheEnd() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        b.data[SIZE - 1] = 7;
        ExportHandler h = handler(b, true, false, false);
        assertEquals(4096, call(h, read(8192, 4096)));
        assertEquals(100, call(h, read(SIZE - 100, 4096)));
        assertEquals(7, reply.get(99));
        assertEquals(0, call(h, read(SIZE, 4096)));
        assertTrue(violations.isEmpty());
    }

    @Test
    void writesFollowTheFixedSizeOrGrowablePolicy() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        ExportHandler fixed = handler(b, true, false, false);
        assertEquals(FuseAbi.WriteOut.SIZE, call(fixed, write(10, new byte[] { 1, 2, 3 })));
        assertEquals(3, reply.getInt(0));
        assertEquals(2, b.data[11]);
        assertEquals(FuseAbi.WriteOut.SIZE, call(fixed, write(SIZE - 2, new byte[] { 1, 2, 3, 4 })));
        assertEquals(2, reply.getInt(0), "a write crossing the end is shortened");
        assertEquals(-Errno.ENOSPC, call(fixed, write(SIZE, new byte[] { 1 })));
        assertEquals(SIZE, b.size());
        ExportHandler growable = handler(b, true, true, false);
        assertEquals(FuseAbi.WriteOut.SIZE, call(growable, write(SIZE + 4096, new byte[] { 9 })));
        assertEquals(SIZE + 4097, b.size());
    }

    @Test
    void readOnlyExportsRefuseEveryWay() {
        MemoryBackend b = new MemoryBackend(SIZE, false);
        ExportHandler h = handler(b, false, false, false);
        assertEquals(-Errno.EACCES, call(h, request(Op.OPEN, a -> a.putInt(FuseAbi.OpenIn.FLAGS, 2), new byte[0])));
        assertEquals(FuseAbi.OpenOut.SIZE, call(h, request(Op.OPEN, a -> a.putInt(FuseAbi.OpenIn.FLAGS, 0), new byte[0])));
        // fuse-cache=page: the page cache is kept across opens
        assertEquals(FuseAbi.OpenOut.FOPEN_PARALLEL_DIRECT_WRITES | FuseAbi.OpenOut.FOPEN_KEEP_CACHE,
                reply.getInt(FuseAbi.OpenOut.OPEN_FLAGS));
        ExportHandler direct = new ExportHandler("t", b, new ExportPolicy(false, false, false, 1000, 1000, false, true),
                violations::add);
        assertEquals(FuseAbi.OpenOut.SIZE, call(direct, request(Op.OPEN, a -> a.putInt(FuseAbi.OpenIn.FLAGS, 0), new byte[0])));
        assertEquals(FuseAbi.OpenOut.FOPEN_PARALLEL_DIRECT_WRITES | FuseAbi.OpenOut.FOPEN_DIRECT_IO,
                reply.getInt(FuseAbi.OpenOut.OPEN_FLAGS), "fuse-cache=direct");
        assertEquals(-Errno.EACCES, call(h, write(0, new byte[] { 1 })));
        assertEquals(-Errno.EACCES, call(h, request(Op.SETATTR, a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_SIZE).putLong(16, 5), new byte[0])));
        assertEquals(-Errno.EROFS, call(h, request(Op.SETATTR, a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_MODE).putInt(68, 0100600), new byte[0])));
        assertEquals(-Errno.EACCES, call(h, request(Op.FALLOCATE, a -> a.putLong(16, 4096).putInt(24, 3), new byte[0])));
        assertEquals(SIZE, b.size());
    }

    @Test
    void setattrResizesAndChangesModeButOwnersOnlyWithAllowOther() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        ExportHandler h = handler(b, true, false, false);
        assertEquals(AttrOut.SIZE, call(h, request(Op.SETATTR, a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_SIZE).putLong(16, 8192), new byte[0])));
        assertEquals(8192, b.size());
        assertEquals(8192, reply.getLong(AttrOut.SIZE_FIELD));
        assertEquals(AttrOut.SIZE, call(h, request(Op.SETATTR, a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_MODE).putInt(68, 0100400), new byte[0])));
        assertEquals(0100400, reply.getInt(AttrOut.MODE));
        assertEquals(-Errno.EOPNOTSUPP, call(h, request(Op.SETATTR, a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_UID).putInt(76, 5), new byte[0])));
        ExportHandler open = handler(b, true, false, true);
        assertEquals(AttrOut.SIZE, call(open, request(Op.SETATTR, a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_UID).putInt(76, 5), new byte[0])));
        assertEquals(5, reply.getInt(AttrOut.UID));
    }

    @Test
    void modeIsOwnerOnlyWhateverAllowOtherSays() {
        for (boolean allowOther : new boolean[] { false, true }) {
            assertEquals(AttrOut.SIZE, call(handler(new MemoryBackend(SIZE, true), true, false, allowOther),
                    request(Op.GETATTR, a -> { }, new byte[0])));
            assertEquals(0100600, reply.getInt(AttrOut.MODE), "writable, allow-other " + allowOther);
            assertEquals(AttrOut.SIZE, call(handler(new MemoryBackend(SIZE, false), false, false, allowOther),
                    request(Op.GETATTR, a -> { }, new byte[0])));
            assertEquals(0100400, reply.getInt(AttrOut.MODE), "read-only, allow-other " + allowOther);
        }
    }

    @Test
    void groupAndOtherBitsNeedAllowOtherAndARefusalChangesNothing() {
        ExportHandler closed = handler(new MemoryBackend(SIZE, true), true, false, false);
        for (int bits : new int[] { 0640, 0604, 0644, 0660, 0606, 0610 }) {
            assertEquals(-Errno.EPERM, call(closed, request(Op.SETATTR,
                    a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_MODE).putInt(68, 0100000 | bits), new byte[0])), Integer.toOctalString(bits));
        }
        call(closed, request(Op.GETATTR, a -> { }, new byte[0]));
        assertEquals(0100600, reply.getInt(AttrOut.MODE));

        ExportHandler open = handler(new MemoryBackend(SIZE, true), true, false, true);
        assertEquals(AttrOut.SIZE, call(open, request(Op.SETATTR,
                a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_MODE).putInt(68, 0100444), new byte[0])));
        assertEquals(0100444, reply.getInt(AttrOut.MODE));

        ExportHandler readOnly = handler(new MemoryBackend(SIZE, false), false, false, true);
        assertEquals(-Errno.EROFS, call(readOnly, request(Op.SETATTR,
                a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_MODE).putInt(68, 0100644), new byte[0])));
        assertEquals(AttrOut.SIZE, call(readOnly, request(Op.SETATTR,
                a -> a.putInt(0, FuseAbi.SetattrIn.FATTR_MODE).putInt(68, 0100444), new byte[0])));
        assertEquals(0100444, reply.getInt(AttrOut.MODE));
    }

    @Test
    void fallocatePunchesZeroesAndAllocates() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        ExportHandler h = handler(b, true, false, false);
        call(h, write(0, new byte[16384]));
        assertEquals(0, call(h, request(Op.FALLOCATE, a -> a.putLong(8, 4096).putLong(16, 4096).putInt(24, 3), new byte[0])));
        assertFalse(b.allocated.get(1));
        assertEquals(-Errno.EOPNOTSUPP, call(h, request(Op.FALLOCATE, a -> a.putLong(16, 4096).putInt(24, 2), new byte[0])),
                "punch hole without keep-size");
        assertEquals(-Errno.EOPNOTSUPP, call(h, request(Op.FALLOCATE, a -> a.putLong(16, 4096).putInt(24, 0x20), new byte[0])));
        assertEquals(0, call(h, request(Op.FALLOCATE, a -> a.putLong(8, 65536).putLong(16, 4096).putInt(24, 0), new byte[0])));
        assertTrue(b.allocated.get(16));
        assertEquals(SIZE, b.size());
    }

    @Test
    void fallocateAtOrPastTheEndIsAnExplicitResizeEvenWhenNotGrowable() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        ExportHandler h = handler(b, true, false, false);
        assertEquals(0, call(h, request(Op.FALLOCATE, a -> a.putLong(8, SIZE).putLong(16, 8192).putInt(24, 0), new byte[0])));
        assertEquals(SIZE + 8192, b.size());
        assertTrue(b.allocated.get(SIZE / 4096) && b.allocated.get(SIZE / 4096 + 1), "the new range is allocated");
        assertEquals(0, call(h, request(Op.FALLOCATE, a -> a.putLong(8, SIZE + 16384).putLong(16, 4096).putInt(24, 0), new byte[0])),
                "past the end");
        assertEquals(SIZE + 20480, b.size());
        assertEquals(-Errno.ENOSPC, call(h, request(Op.FALLOCATE, a -> a.putLong(8, SIZE + 20480).putLong(16, 4096).putInt(24, 0x10), new byte[0])),
                "zero-range past the end still needs growable");
        assertEquals(-Errno.ENOSPC, call(h, write(SIZE + 20480, new byte[] { 1 })), "writes past the end still need growable");
        assertEquals(SIZE + 20480, b.size());
    }

    @Test
    void lseekFindsDataAndHoles() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        b.allocated.set(4, 6);
        ExportHandler h = handler(b, true, false, false);
        assertEquals(8, call(h, request(Op.LSEEK, a -> a.putLong(8, 0).putInt(16, 3), new byte[0])));
        assertEquals(4 * 4096, reply.getLong(0));
        assertEquals(8, call(h, request(Op.LSEEK, a -> a.putLong(8, 4 * 4096).putInt(16, 4), new byte[0])));
        assertEquals(6 * 4096, reply.getLong(0));
        assertEquals(-Errno.ENXIO, call(h, request(Op.LSEEK, a -> a.putLong(8, 6 * 4096).putInt(16, 3), new byte[0])));
        assertEquals(-Errno.ENXIO, call(h, request(Op.LSEEK, a -> a.putLong(8, SIZE).putInt(16, 4), new byte[0])));
    }

    @Test
    void flushAndFsyncFlushTheBackend() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        ExportHandler h = handler(b, true, false, false);
        assertEquals(0, call(h, request(Op.FLUSH, a -> { }, new byte[0])));
        assertEquals(0, call(h, request(Op.FSYNC, a -> { }, new byte[0])));
        assertEquals(2, b.flushes);
        assertEquals(0, call(h, request(Op.RELEASE, a -> { }, new byte[0])));
        assertEquals(FuseAbi.StatfsOut.SIZE, call(h, request(Op.STATFS, a -> { }, new byte[0])));
        assertEquals(SIZE / 4096, reply.getLong(FuseAbi.StatfsOut.BLOCKS));
    }

    @Test
    void unknownOpsGetEnosysAndForgetsNoReply() {
        ExportHandler h = handler(new MemoryBackend(SIZE, true), true, false, false);
        assertEquals(-Errno.ENOSYS, call(h, request(22 /* GETXATTR */, a -> { }, new byte[0])));
        assertEquals(RequestHandler.NO_REPLY, call(h, request(Op.FORGET, a -> { }, new byte[0])));
        assertEquals(RequestHandler.NO_REPLY, call(h, request(Op.INTERRUPT, a -> { }, new byte[0])));
        assertEquals(-Errno.ENOENT, call(h, request(Op.LOOKUP, a -> { }, new byte[] { 'x', 0 })));
        assertTrue(violations.isEmpty());
    }

    @Test
    void backendErrorsBecomeEioAndTheExportStaysUp() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        ExportHandler h = handler(b, true, false, false);
        b.failReads = true;
        assertEquals(-Errno.EIO, call(h, read(0, 4096)));
        assertEquals(1, h.ioErrors());
        b.failReads = false;
        assertEquals(4096, call(h, read(0, 4096)));
        assertTrue(violations.isEmpty());
    }

    @Test
    void aBugHaltsTheConnectionInsteadOfAnsweringEio() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        ExportHandler h = handler(b, true, false, false);
        b.bugOnRead = true;
        assertEquals(RequestHandler.NO_REPLY, call(h, read(0, 4096)));
        assertEquals(1, violations.size());
        assertTrue(violations.get(0).contains("READ: unexpected java.lang.IllegalStateException: a bug"), violations.get(0));
        assertEquals(0, h.ioErrors(), "a bug is not counted as an I/O error");
    }

    @Test
    void protocolViolationsHaltWithAPreciseReason() {
        ExportHandler h = handler(new MemoryBackend(SIZE, true), true, false, false);
        assertEquals(RequestHandler.NO_REPLY, call(h, ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN)));
        assertTrue(violations.get(0).contains("shorter than the 40-byte header"), violations.get(0));

        ByteBuffer lying = read(0, 4096);
        lying.putInt(InHeader.LEN, 999);
        assertEquals(RequestHandler.NO_REPLY, call(h, lying));
        assertTrue(violations.get(1).contains("READ: header says 999 bytes, read() returned 80"), violations.get(1));

        ByteBuffer truncated = ByteBuffer.allocate(50).order(ByteOrder.LITTLE_ENDIAN);
        truncated.putInt(InHeader.LEN, 50).putInt(InHeader.OPCODE, Op.WRITE);
        assertEquals(RequestHandler.NO_REPLY, call(h, truncated));
        assertTrue(violations.get(2).contains("WRITE: 50 bytes cannot hold its 40-byte arguments"), violations.get(2));

        ByteBuffer w = write(0, new byte[10]);
        w.putInt(InHeader.SIZE + FuseAbi.WriteIn.SIZE_FIELD, 11);
        assertEquals(RequestHandler.NO_REPLY, call(h, w));
        assertTrue(violations.get(3).contains("WRITE: fuse_write_in.size 11 but the request carries 10 data bytes"), violations.get(3));

        assertEquals(RequestHandler.NO_REPLY, call(h, request(Op.INIT, a -> { }, new byte[0])));
        assertTrue(violations.get(4).contains("second INIT"));
    }

    @Test
    void splitLayoutServesTheSameOps() {
        MemoryBackend b = new MemoryBackend(SIZE, true);
        ExportHandler h = handler(b, true, false, false);
        ByteBuffer header = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
        header.putInt(InHeader.LEN, 80 + 3).putInt(InHeader.OPCODE, Op.WRITE).putLong(InHeader.UNIQUE, 8);
        ByteBuffer args = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
        args.putLong(FuseAbi.WriteIn.OFFSET, 100).putInt(FuseAbi.WriteIn.SIZE_FIELD, 3);
        ByteBuffer payload = ByteBuffer.wrap(new byte[] { 4, 5, 6 });
        reply.clear();
        assertEquals(FuseAbi.WriteOut.SIZE, h.handle(header, args, payload, reply));
        assertEquals(5, b.data[101]);
    }
}
