package org.blockfuse.uring.internal;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.blockfuse.uring.internal.IoUringAbi.Sqe;
import org.junit.jupiter.api.Test;

/** A real ring on this kernel: setup with SQE128, NOPs through it, indices wrap around. */
class RingTest {

    @Test
    void nopRoundTrip() throws Exception {
        assumeTrue(UringProbe.kernelAtLeast(System.getProperty("os.version"), 5, 19), "SQE128 needs Linux 5.19+");
        UringProbe.nopRoundTrip();
    }

    @Test
    void batchesWrapAroundTheRing() throws Exception {
        try (Ring ring = Ring.create(8)) {
            assertEquals(8, ring.sq().entries());
            assertEquals(16, ring.cq().entries(), "the CQ is twice the SQ");
            long sum = 0;
            long expected = 0;
            for (int round = 0; round < 10; round++) {
                for (int i = 0; i < 8; i++) {
                    int at = ring.sq().claim();
                    ring.sq().sqes().put(at + Sqe.OPCODE, (byte) IoUringAbi.OP_NOP);
                    ring.sq().sqes().putLong(at + Sqe.USER_DATA, UserData.of(UserData.NOP, round * 8 + i));
                    expected += round * 8 + i;
                }
                assertEquals(0, ring.sq().free());
                assertThrows(IllegalStateException.class, () -> ring.sq().claim());
                assertEquals(0, ring.submit(8));
                long[] acc = {0, 0};
                int n = ring.cq().reap((userData, res, flags) -> {
                    assertEquals(UserData.NOP, UserData.kind(userData));
                    assertEquals(0, res);
                    acc[0] += UserData.index(userData);
                });
                assertEquals(8, n);
                sum += acc[0];
                assertEquals(8, ring.sq().free());
            }
            assertEquals(expected, sum);
            assertEquals(0, ring.cq().overflow());
        }
    }

    @Test
    void userDataPacksKindAndIndex() {
        long u = UserData.of(UserData.FUSE_ENTRY, 4095);
        assertEquals(UserData.FUSE_ENTRY, UserData.kind(u));
        assertEquals(4095, UserData.index(u));
    }

    @Test
    void kernelVersionsAndCpuLists() {
        assertTrue(UringProbe.kernelAtLeast("6.18.44-fc-v669", 6, 14));
        assertTrue(UringProbe.kernelAtLeast("6.14.0", 6, 14));
        assertFalse(UringProbe.kernelAtLeast("6.13.12-arch1", 6, 14));
        assertTrue(UringProbe.kernelAtLeast("7.0-rc1", 6, 14));
        assertEquals(2, UringConfig.countCpuList("0-1"));
        assertEquals(1, UringConfig.countCpuList("0"));
        assertEquals(7, UringConfig.countCpuList("0-3,8,10-11"));
    }

    @Test
    void queueMemoryLayout() {
        // 16 entries: 16 x (512-byte header slot + iovec[2]) + 8 = 8712 bytes -> 3 pages, then the payloads
        assertEquals(3 * 4096 + 16L * (1 << 20), QueueMemory.bytesFor(16, 1 << 20));
        // payloads are rounded up to whole pages
        assertEquals(9 * 4096 + 64L * 8192, QueueMemory.bytesFor(64, 8192 - 100));
    }
}
