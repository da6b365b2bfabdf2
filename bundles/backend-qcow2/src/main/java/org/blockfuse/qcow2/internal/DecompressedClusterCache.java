package org.blockfuse.qcow2.internal;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * A few recently expanded compressed clusters, so that sequential reads smaller than a cluster decompress
 * each cluster once. Besides the expanded clusters it remembers a few descriptors as bare "seen" marks: the
 * first small read of a cluster only decodes the prefix it needs and leaves a mark, and a second one (a
 * sequential reader) expands the whole cluster and keeps it here. Marks live in their own ring, so random
 * readers never push out the clusters a sequential reader is still using.
 * <p>
 * Lookups take no lock and allocate nothing; expanded entries are immutable once published and inserted
 * under a short lock with CLOCK (second chance) eviction; marking allocates nothing either.
 * Descriptors are compressed L2 entries, which are never 0; 0 marks an empty slot.
 */
final class DecompressedClusterCache {

    /** What {@link #get} returns for a cluster that was read before but is not held expanded. */
    static final byte[] SEEN = new byte[0];
    /** Kept (as an entry) for a cluster whose compressed stream did not decode. */
    static final byte[] BROKEN = new byte[0];

    private record Entry(long descriptor, byte[] cluster) {
    }

    private final AtomicReferenceArray<Entry> slots;
    /** Reference bits, set racily by readers. */
    private final byte[] referenced;
    private int hand; // guarded by this

    private final AtomicLongArray marks;
    private final AtomicInteger markHand = new AtomicInteger();

    DecompressedClusterCache(int entries) {
        slots = new AtomicReferenceArray<>(entries);
        referenced = new byte[entries];
        marks = new AtomicLongArray(entries);
    }

    /** The expanded cluster, {@link #SEEN} when only a mark is held, or null. */
    byte[] get(long descriptor) {
        for (int i = 0, n = slots.length(); i < n; i++) {
            Entry e = slots.get(i);
            if (e != null && e.descriptor == descriptor) {
                if (referenced[i] == 0) {
                    referenced[i] = 1;
                }
                return e.cluster;
            }
        }
        for (int i = 0, n = marks.length(); i < n; i++) {
            if (marks.get(i) == descriptor) {
                return SEEN;
            }
        }
        return null;
    }

    /** Remembers that the cluster was read once (overwriting the oldest mark). */
    void mark(long descriptor) {
        int n = marks.length();
        marks.set(Math.floorMod(markHand.getAndIncrement(), n), descriptor);
    }

    /** Keeps an expanded cluster. */
    synchronized void put(long descriptor, byte[] cluster) {
        int n = slots.length();
        for (int i = 0; i < n; i++) {
            Entry e = slots.get(i);
            if (e != null && e.descriptor == descriptor) {
                referenced[i] = 1;
                return; // another thread expanded it meanwhile
            }
        }
        int victim;
        for (int step = 0; ; step++) { // CLOCK, bounded to two sweeps as hits may set bits behind the hand
            int s = hand;
            hand = s + 1 == n ? 0 : s + 1;
            if (slots.get(s) == null || referenced[s] == 0 || step >= 2 * n) {
                victim = s;
                break;
            }
            referenced[s] = 0;
        }
        referenced[victim] = 1;
        slots.set(victim, new Entry(descriptor, cluster));
    }
}
