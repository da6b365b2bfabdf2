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

    private static final String[] NAMES = new String[134];

    static {
        String[][] known = {{"1", "EPERM"}, {"2", "ENOENT"}, {"4", "EINTR"}, {"5", "EIO"}, {"6", "ENXIO"},
            {"9", "EBADF"}, {"11", "EAGAIN"}, {"12", "ENOMEM"}, {"13", "EACCES"}, {"16", "EBUSY"}, {"17", "EEXIST"},
            {"19", "ENODEV"}, {"20", "ENOTDIR"}, {"21", "EISDIR"}, {"22", "EINVAL"}, {"27", "EFBIG"},
            {"28", "ENOSPC"}, {"30", "EROFS"}, {"38", "ENOSYS"}, {"61", "ENODATA"}, {"75", "EOVERFLOW"},
            {"95", "EOPNOTSUPP"}, {"103", "ECONNABORTED"}, {"107", "ENOTCONN"}, {"110", "ETIMEDOUT"},
            {"122", "EDQUOT"}, {"125", "ECANCELED"}};
        for (String[] k : known) {
            NAMES[Integer.parseInt(k[0])] = k[1];
        }
    }

    /** The symbolic name of the errno values blockfuse meets, else "errno N". */
    public static String name(int errno) {
        String n = errno >= 0 && errno < NAMES.length ? NAMES[errno] : null;
        return n != null ? n : "errno " + errno;
    }
}
