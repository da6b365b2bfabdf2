package org.blockfuse.nativeio;

/** errno values (asm-generic/errno-base.h and errno.h, x86_64). */
public final class Errno {
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EINTR = 4;
    public static final int EIO = 5;
    public static final int ENXIO = 6;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EBUSY = 16;
    public static final int EEXIST = 17;
    public static final int ENODEV = 19;
    public static final int ENOTDIR = 20;
    public static final int EISDIR = 21;
    public static final int EINVAL = 22;
    public static final int EFBIG = 27;
    public static final int ENOSPC = 28;
    public static final int EROFS = 30;
    public static final int ENOSYS = 38;
    public static final int EOVERFLOW = 75;
    public static final int EOPNOTSUPP = 95;
    public static final int ECONNABORTED = 103;
    public static final int ENOTCONN = 107;
    public static final int ECANCELED = 125;

    private Errno() {
    }

    /** The symbolic name of the errno values that matter for connection ends, else "errno N". */
    public static String name(int errno) {
        switch (errno) {
            case ENODEV: return "ENODEV";
            case ECONNABORTED: return "ECONNABORTED";
            case ENOTCONN: return "ENOTCONN";
            case ENOENT: return "ENOENT";
            case EIO: return "EIO";
            default: return "errno " + errno;
        }
    }
}
