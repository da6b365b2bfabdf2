package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Bounded cache of decoded L2 tables keyed by their host offset, with CLOCK (second chance) eviction.
 * A hit takes no lock, allocates nothing and writes no shared state unless the entry's reference bit was
 * clear: readers walk immutable hash-chain nodes published through an {@link AtomicReferenceArray}.
 * Misses load the table without any lock held and then insert it under a short per-segment lock;
 * eviction unlinks the victim copy-on-write, so a reader walking the old chain still sees valid nodes.
 */
final class L2TableCache {

    /** Loads the table at a host offset (called without any lock held). */
    interface Loader {
        long[] load(long tableOffset) throws IOException;
    }

    private static final int MAX_SEGMENTS = 8;
    /** Small caches stay one CLOCK; splitting them would evict tables the working set still needs. */
    private static final int MIN_TABLES_PER_SEGMENT = 8;

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
        int hash = spread(tableOffset);
        Segment segment = segments[hash & (segments.length - 1)];
        long[] table = segment.get(tableOffset, hash);
        if (table == null) {
            table = segment.put(tableOffset, hash, loader.load(tableOffset));
        }
        return table[index];
    }

    int capacity() {
        return segments.length * segments[0].slotKeys.length;
    }

    private static int spread(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h >>> 32);
    }

    /** An immutable hash-chain link; eviction rebuilds the part of a chain in front of the victim. */
    private static final class Node {
        final long key;
        final long[] table;
        final int slot;
        final Node next;

        Node(long key, long[] table, int slot, Node next) {
            this.key = key;
            this.table = table;
            this.slot = slot;
            this.next = next;
        }
    }

    private static final class Segment {
        private final AtomicReferenceArray<Node> buckets;
        private final int bucketShift;
        /** Reference bits, set racily by readers (a lost update only costs a little eviction accuracy). */
        private final byte[] referenced;
        // Guarded by this:
        private final long[] slotKeys;
        private int used;
        private int hand;

        Segment(int capacity) {
            int bucketCount = Integer.highestOneBit(capacity) << 1;
            buckets = new AtomicReferenceArray<>(bucketCount);
            bucketShift = 32 - Integer.numberOfTrailingZeros(bucketCount);
            referenced = new byte[capacity];
            slotKeys = new long[capacity];
        }

        /** Bucket index from the high hash bits (the low ones picked the segment). */
        private int bucket(int hash) {
            return bucketShift == 32 ? 0 : hash >>> bucketShift;
        }

        long[] get(long key, int hash) {
            for (Node n = buckets.get(bucket(hash)); n != null; n = n.next) {
                if (n.key == key) {
                    if (referenced[n.slot] == 0) {
                        referenced[n.slot] = 1;
                    }
                    return n.table;
                }
            }
            return null;
        }

        synchronized long[] put(long key, int hash, long[] table) {
            int b = bucket(hash);
            for (Node n = buckets.get(b); n != null; n = n.next) {
                if (n.key == key) {
                    return n.table; // another thread loaded it meanwhile; keep one copy
                }
            }
            int slot;
            if (used < slotKeys.length) {
                slot = used++;
            } else {
                slot = victim();
                unlink(slotKeys[slot], slot);
            }
            slotKeys[slot] = key;
            referenced[slot] = 1;
            buckets.set(b, new Node(key, table, slot, buckets.get(b)));
            return table;
        }

        /**
         * CLOCK: the first slot at or after the hand whose reference bit is clear, clearing bits on the way.
         * Bounded to two sweeps, as concurrent hits may set bits again behind the hand.
         */
        private int victim() {
            for (int step = 0; ; step++) {
                int s = hand;
                hand = s + 1 == slotKeys.length ? 0 : s + 1;
                if (referenced[s] == 0 || step >= 2 * slotKeys.length) {
                    return s;
                }
                referenced[s] = 0;
            }
        }

        /** Removes the node for key (held in slot) by copying the chain links in front of it. */
        private void unlink(long key, int slot) {
            int b = bucket(spread(key));
            Node head = buckets.get(b);
            buckets.set(b, without(head, slot));
        }

        private static Node without(Node n, int slot) {
            if (n == null) {
                return null;
            }
            if (n.slot == slot) {
                return n.next;
            }
            return new Node(n.key, n.table, n.slot, without(n.next, slot));
        }
    }
}
