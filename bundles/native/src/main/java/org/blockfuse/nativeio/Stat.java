package org.blockfuse.nativeio;

import java.nio.ByteBuffer;

/** The fields of x86_64 {@code struct stat} (144 bytes) that blockfuse uses. */
public record Stat(long dev, long ino, int mode, int uid, int gid, long rdev, long size, long blksize,
        long blocks) {
    static final int SIZE = 144;
    public static final int S_IFMT = 0170000;
    public static final int S_IFREG = 0100000;
    public static final int S_IFBLK = 0060000;
    public static final int S_IFDIR = 0040000;
    public static final int S_IFLNK = 0120000;

    static Stat from(ByteBuffer b) {
        return new Stat(b.getLong(0), b.getLong(8), b.getInt(24), b.getInt(28), b.getInt(32), b.getLong(40),
                b.getLong(48), b.getLong(56), b.getLong(64));
    }

    public boolean isRegular() {
        return (mode & S_IFMT) == S_IFREG;
    }

    public boolean isBlockDevice() {
        return (mode & S_IFMT) == S_IFBLK;
    }

    public boolean isDirectory() {
        return (mode & S_IFMT) == S_IFDIR;
    }
}
