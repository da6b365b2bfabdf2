package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.ExportPolicy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.blockfuse.fuse.FuseAbi.InHeader;
import org.blockfuse.fuse.FuseAbi.Op;
import org.junit.jupiter.api.Test;

/** READ and WRITE through the legacy views allocate nothing per request (after warm-up). */
class HotPathAllocationTest {
    /** What DeviceLoop does with each request it reads. */
    private static int serve(ExportHandler h, LegacyRequest views, int length, ByteBuffer reply) {
        assertEquals(null, views.accept(length));
        return h.handle(views.header(), views.args(), views.payload(), reply);
    }

    @Test
    void readsAndWritesAllocateNothing() {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        MemoryBackend backend = new MemoryBackend(1 << 20, true);
        ExportHandler h = new ExportHandler("t", backend, new ExportPolicy(true, false, false, 0, 0), what -> {
            throw new AssertionError(what);
        });
        ByteBuffer request = ByteBuffer.allocateDirect(8192 + 4096).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer reply = ByteBuffer.allocateDirect(8192).order(ByteOrder.LITTLE_ENDIAN);
        LegacyRequest views = new LegacyRequest(request);

        int readLen = InHeader.SIZE + FuseAbi.ReadIn.SIZE;
        int writeLen = InHeader.SIZE + FuseAbi.WriteIn.SIZE + 4096;
        for (int round = 0; round < 2; round++) {
            long before = mx.getThreadAllocatedBytes(Thread.currentThread().getId());
            for (int i = 0; i < 20_000; i++) {
                long offset = (i * 4096L) & ((1 << 20) - 1);
                request.putInt(InHeader.LEN, readLen).putInt(InHeader.OPCODE, Op.READ).putLong(InHeader.UNIQUE, 2 * i + 2); // the kernel never sends unique 0
                request.putLong(InHeader.SIZE + FuseAbi.ReadIn.OFFSET, offset).putInt(InHeader.SIZE + FuseAbi.ReadIn.SIZE_FIELD, 4096);
                reply.clear();
                assertEquals(4096, serve(h, views, readLen, reply));
                request.putInt(InHeader.LEN, writeLen).putInt(InHeader.OPCODE, Op.WRITE);
                request.putLong(InHeader.SIZE + FuseAbi.WriteIn.OFFSET, offset).putInt(InHeader.SIZE + FuseAbi.WriteIn.SIZE_FIELD, 4096);
                reply.clear();
                assertEquals(FuseAbi.WriteOut.SIZE, serve(h, views, writeLen, reply));
            }
            long allocated = mx.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;
            if (round == 1) {
                assertTrue(allocated < 4096, "40000 requests allocated " + allocated + " bytes");
            }
        }
    }
}
