package org.blockfuse.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

class L2TableCacheTest {

    @Test
    void hitsDoNoIoAndLeastRecentlyUsedIsEvicted() throws IOException {
        AtomicInteger loads = new AtomicInteger();
        long table = 4096;
        L2TableCache cache = new L2TableCache(2 * table, table, offset -> {
            loads.incrementAndGet();
            return new long[] {offset, offset + 1};
        });
        int capacity = cache.capacity();
        for (int round = 0; round < 3; round++) {
            for (long i = 0; i < capacity; i++) {
                assertEquals(i * table + 1, cache.word(i * table, 1));
            }
        }
        assertEquals(capacity, loads.get(), "second and third rounds are pure hits");
        cache.word(capacity * table, 0); // evicts something
        assertEquals(capacity + 1, loads.get());
        for (long i = 0; i < capacity * 4L; i++) {
            cache.word((i % (capacity + 1)) * table, 0);
        }
        assertEquals(0, cache.word(0, 0));
    }

    @Test
    void capacityFollowsTheConfiguredBytes() {
        assertEquals(64, new L2TableCache(4 << 20, 64 << 10, o -> new long[1]).capacity());
        assertEquals(1, new L2TableCache(512, 2 << 20, o -> new long[1]).capacity());
    }
}
