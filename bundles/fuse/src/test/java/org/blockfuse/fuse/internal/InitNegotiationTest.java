package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.MountException;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.blockfuse.fuse.FuseAbi.InHeader;
import org.blockfuse.fuse.FuseAbi.InitFlags;
import org.blockfuse.fuse.FuseAbi.InitOut;
import org.blockfuse.fuse.FuseAbi.OutHeader;
import org.junit.jupiter.api.Test;

class InitNegotiationTest {
    private static ByteBuffer init(int minor, long offered) {
        ByteBuffer b = ByteBuffer.allocate(104).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(InHeader.LEN, 104).putInt(InHeader.OPCODE, FuseAbi.Op.INIT).putLong(InHeader.UNIQUE, 2);
        b.putInt(40, 7).putInt(44, minor).putInt(48, 131072).putInt(52, (int) offered).putInt(56, (int) (offered >>> 32));
        return b;
    }

    @Test
    void asksForBigAsyncIoAndNeverIoUring() throws Exception {
        long offered = InitFlags.ASYNC_READ | InitFlags.ASYNC_DIO | InitFlags.MAX_PAGES | InitFlags.INIT_EXT
                | InitFlags.BIG_WRITES | InitFlags.OVER_IO_URING | (1L << 1) /* posix locks */;
        ByteBuffer reply = ByteBuffer.allocate(80).order(ByteOrder.LITTLE_ENDIAN);
        InitNegotiation.Result r = InitNegotiation.answer(init(45, offered), 104, reply, 1 << 20);
        assertEquals(1 << 20, r.maxWrite());
        assertEquals(256, r.maxPages());
        assertEquals(0, r.flags() & InitFlags.OVER_IO_URING, "rings are registered later; the flag would hang the mount");
        assertEquals(0, r.flags() & (1L << 1), "locks stay in the kernel");
        assertEquals(80, reply.getInt(OutHeader.LEN));
        assertEquals(2, reply.getLong(OutHeader.UNIQUE));
        assertEquals(45, reply.getInt(16 + InitOut.MINOR));
        assertEquals(1 << 20, reply.getInt(16 + InitOut.MAX_WRITE));
        assertEquals(256, reply.getShort(16 + InitOut.MAX_PAGES));
        assertEquals(131072, reply.getInt(16 + InitOut.MAX_READAHEAD));
    }

    @Test
    void withoutMaxPagesWritesStayAt128KiB() throws Exception {
        ByteBuffer reply = ByteBuffer.allocate(80).order(ByteOrder.LITTLE_ENDIAN);
        InitNegotiation.Result r = InitNegotiation.answer(init(31, InitFlags.ASYNC_READ), 104, reply, 1 << 20);
        assertEquals(128 << 10, r.maxWrite());
        assertEquals(31, r.minor());
    }

    @Test
    void refusesWhatIsNotAnInit() {
        ByteBuffer notInit = init(45, 0).putInt(InHeader.OPCODE, FuseAbi.Op.READ);
        MountException e = assertThrows(MountException.class,
                () -> InitNegotiation.answer(notInit, 104, ByteBuffer.allocate(80), 1 << 20));
        assertTrue(e.getMessage().contains("expected INIT"));
        assertThrows(MountException.class, () -> InitNegotiation.answer(init(45, 0).putInt(40, 8), 104, ByteBuffer.allocate(80), 1 << 20));
    }
}
