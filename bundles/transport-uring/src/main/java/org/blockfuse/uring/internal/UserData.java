package org.blockfuse.uring.internal;

/**
 * Packs what a completion is about into the 64-bit user_data of an SQE: a kind in the top byte
 * and an entry index in the low 32 bits.
 */
public final class UserData {
    /** A FUSE command (REGISTER or COMMIT_AND_FETCH) of the entry in the low bits. */
    public static final int FUSE_ENTRY = 1;
    /** The read on the queue's wake-up eventfd. */
    public static final int WAKEUP = 2;
    /** A NOP (availability probe, tests). */
    public static final int NOP = 3;

    private UserData() {
    }

    public static long of(int kind, int index) {
        return ((long) kind << 56) | Integer.toUnsignedLong(index);
    }

    public static int kind(long userData) {
        return (int) (userData >>> 56);
    }

    public static int index(long userData) {
        return (int) userData;
    }
}
