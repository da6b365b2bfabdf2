package org.blockfuse.qcow2.internal;

/**
 * A few recently expanded compressed clusters, so that sequential reads smaller than a cluster decompress
 * each cluster once. Entries are immutable once published; the lock only guards the slot arrays.
 */
final class DecompressedClusterCache {

    private static final long EMPTY = -1;

    private final long[] keys;
    private final byte[][] clusters;
    private final long[] lastUse;
    private long clock;

    DecompressedClusterCache(int entries) {
        keys = new long[entries];
        clusters = new byte[entries][];
        lastUse = new long[entries];
        java.util.Arrays.fill(keys, EMPTY);
    }

    synchronized byte[] get(long descriptor) {
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] == descriptor) {
                lastUse[i] = ++clock;
                return clusters[i];
            }
        }
        return null;
    }

    synchronized void put(long descriptor, byte[] cluster) {
        int victim = 0;
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] == descriptor) {
                return;
            }
            if (lastUse[i] < lastUse[victim]) {
                victim = i;
            }
        }
        keys[victim] = descriptor;
        clusters[victim] = cluster;
        lastUse[victim] = ++clock;
    }
}
