package org.blockfuse.qcow2.internal;

import java.io.IOException;

/**
 * Bounded LRU of decoded L2 tables keyed by their host offset. Split into segments with one short lock each,
 * so concurrent readers rarely meet; no lock is held during I/O. A hit neither allocates nor boxes: keys are
 * primitive longs in an index-linked hash chain and LRU list.
 */
final class L2TableCache {

    /** Loads the table at a host offset (called without any lock held). */
    interface Loader {
        long[] load(long tableOffset) throws IOException;
    }

    private static final int MAX_SEGMENTS = 8;
    /** Small caches stay one exact LRU; splitting them would evict tables the working set still needs. */
    private static final int MIN_TABLES_PER_SEGMENT = 8;
    private static final int NONE = -1;

    private final Segment[] segments;
    private final Loader loader;

    L2TableCache(long cacheBytes, long tableBytes, Loader loader) {
        this.loader = loader;
        long tables = Math.max(1, cacheBytes / tableBytes);
        int segmentCount = Integer.highestOneBit(
                (int) Math.max(1, Math.min(MAX_SEGMENTS, tables / MIN_TABLES_PER_SEGMENT)));
        int perSegment = (int) Math.min(Integer.MAX_VALUE / 4, Math.max(1, tables / segmentCount));
        segments = new Segment[segmentCount];
        for (int i = 0; i < segmentCount; i++) {
            segments[i] = new Segment(perSegment);
        }
    }

    /** The 64-bit word at index of the table at tableOffset. */
    long word(long tableOffset, int index) throws IOException {
        Segment segment = segments[spread(tableOffset) & (segments.length - 1)];
        long[] table = segment.get(tableOffset);
        if (table == null) {
            table = segment.put(tableOffset, loader.load(tableOffset));
        }
        return table[index];
    }

    int capacity() {
        return segments.length * segments[0].keys.length;
    }

    private static int spread(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h >>> 32);
    }

    private static final class Segment {
        private final long[] keys;
        private final long[][] tables;
        private final int[] prev;
        private final int[] next;
        private final int[] chain;
        private final int[] buckets;
        private int head = NONE;
        private int tail = NONE;
        private int used;

        Segment(int capacity) {
            keys = new long[capacity];
            tables = new long[capacity][];
            prev = new int[capacity];
            next = new int[capacity];
            chain = new int[capacity];
            buckets = new int[Integer.highestOneBit(capacity) << 1];
            java.util.Arrays.fill(buckets, NONE);
        }

        synchronized long[] get(long key) {
            int slot = find(key);
            if (slot == NONE) {
                return null;
            }
            moveToFront(slot);
            return tables[slot];
        }

        synchronized long[] put(long key, long[] table) {
            int slot = find(key);
            if (slot != NONE) {
                moveToFront(slot); // another thread loaded it meanwhile; keep one copy
                return tables[slot];
            }
            if (used < keys.length) {
                slot = used++;
            } else {
                slot = tail;
                unlink(slot);
                removeFromBucket(slot);
            }
            keys[slot] = key;
            tables[slot] = table;
            int bucket = bucket(key);
            chain[slot] = buckets[bucket];
            buckets[bucket] = slot;
            linkFront(slot);
            return table;
        }

        private int bucket(long key) {
            return spread(key) & (buckets.length - 1);
        }

        private int find(long key) {
            for (int s = buckets[bucket(key)]; s != NONE; s = chain[s]) {
                if (keys[s] == key) {
                    return s;
                }
            }
            return NONE;
        }

        private void removeFromBucket(int slot) {
            int bucket = bucket(keys[slot]);
            if (buckets[bucket] == slot) {
                buckets[bucket] = chain[slot];
                return;
            }
            for (int s = buckets[bucket]; s != NONE; s = chain[s]) {
                if (chain[s] == slot) {
                    chain[s] = chain[slot];
                    return;
                }
            }
        }

        private void moveToFront(int slot) {
            if (head != slot) {
                unlink(slot);
                linkFront(slot);
            }
        }

        private void unlink(int slot) {
            int p = prev[slot];
            int n = next[slot];
            if (p != NONE) {
                next[p] = n;
            } else {
                head = n;
            }
            if (n != NONE) {
                prev[n] = p;
            } else {
                tail = p;
            }
        }

        private void linkFront(int slot) {
            prev[slot] = NONE;
            next[slot] = head;
            if (head != NONE) {
                prev[head] = slot;
            }
            head = slot;
            if (tail == NONE) {
                tail = slot;
            }
        }
    }
}
