package org.blockfuse.fuse;

/**
 * The FUSE wire ABI as named byte offsets, from include/uapi/linux/fuse.h of Linux 6.18
 * (protocol 7.45). All integers are little-endian; every struct is naturally aligned.
 * {@code FuseAbiTest} checks each size and offset against the fact sheet.
 */
public final class FuseAbi {
    public static final int KERNEL_VERSION = 7;
    /** The newest minor this server speaks; the kernel adapts to older ones. */
    public static final int KERNEL_MINOR_VERSION = 45;
    public static final long ROOT_ID = 1;

    private FuseAbi() {
    }

    /** Opcodes (enum fuse_opcode). */
    public static final class Op {
        public static final int LOOKUP = 1;
        public static final int FORGET = 2;
        public static final int GETATTR = 3;
        public static final int SETATTR = 4;
        public static final int OPEN = 14;
        public static final int READ = 15;
        public static final int WRITE = 16;
        public static final int STATFS = 17;
        public static final int RELEASE = 18;
        public static final int FSYNC = 20;
        public static final int FLUSH = 25;
        public static final int INIT = 26;
        public static final int INTERRUPT = 36;
        public static final int DESTROY = 38;
        public static final int BATCH_FORGET = 42;
        public static final int FALLOCATE = 43;
        public static final int LSEEK = 46;

        private Op() {
        }

        /** Size of the op struct that follows the in header (0 when none or not used here). */
        public static int argSize(int opcode) {
            switch (opcode) {
                case GETATTR: return GetattrIn.SIZE;
                case SETATTR: return SetattrIn.SIZE;
                case OPEN: return OpenIn.SIZE;
                case READ: return ReadIn.SIZE;
                case WRITE: return WriteIn.SIZE;
                case RELEASE: return ReleaseIn.SIZE;
                case FSYNC: return FsyncIn.SIZE;
                case FLUSH: return FlushIn.SIZE;
                case INIT: return InitIn.SIZE;
                case INTERRUPT: return InterruptIn.SIZE;
                case FORGET: return ForgetIn.SIZE;
                case BATCH_FORGET: return BatchForgetIn.SIZE;
                case FALLOCATE: return FallocateIn.SIZE;
                case LSEEK: return LseekIn.SIZE;
                default: return 0;
            }
        }

        public static String name(int opcode) {
            switch (opcode) {
                case LOOKUP: return "LOOKUP";
                case FORGET: return "FORGET";
                case GETATTR: return "GETATTR";
                case SETATTR: return "SETATTR";
                case OPEN: return "OPEN";
                case READ: return "READ";
                case WRITE: return "WRITE";
                case STATFS: return "STATFS";
                case RELEASE: return "RELEASE";
                case FSYNC: return "FSYNC";
                case FLUSH: return "FLUSH";
                case INIT: return "INIT";
                case INTERRUPT: return "INTERRUPT";
                case DESTROY: return "DESTROY";
                case BATCH_FORGET: return "BATCH_FORGET";
                case FALLOCATE: return "FALLOCATE";
                case LSEEK: return "LSEEK";
                default: return "opcode " + opcode;
            }
        }
    }

    /** struct fuse_in_header. */
    public static final class InHeader {
        public static final int LEN = 0;
        public static final int OPCODE = 4;
        public static final int UNIQUE = 8;
        public static final int NODEID = 16;
        public static final int UID = 24;
        public static final int GID = 28;
        public static final int PID = 32;
        public static final int TOTAL_EXTLEN = 36;
        public static final int SIZE = 40;

        private InHeader() {
        }
    }

    /** struct fuse_out_header. */
    public static final class OutHeader {
        public static final int LEN = 0;
        public static final int ERROR = 4;
        public static final int UNIQUE = 8;
        public static final int SIZE = 16;

        private OutHeader() {
        }
    }

    /** struct fuse_init_in. */
    public static final class InitIn {
        public static final int MAJOR = 0;
        public static final int MINOR = 4;
        public static final int MAX_READAHEAD = 8;
        public static final int FLAGS = 12;
        public static final int FLAGS2 = 16;
        public static final int SIZE = 64;

        private InitIn() {
        }
    }

    /** struct fuse_init_out. */
    public static final class InitOut {
        public static final int MAJOR = 0;
        public static final int MINOR = 4;
        public static final int MAX_READAHEAD = 8;
        public static final int FLAGS = 12;
        public static final int MAX_BACKGROUND = 16;
        public static final int CONGESTION_THRESHOLD = 18;
        public static final int MAX_WRITE = 20;
        public static final int TIME_GRAN = 24;
        public static final int MAX_PAGES = 28;
        public static final int MAP_ALIGNMENT = 30;
        public static final int FLAGS2 = 32;
        public static final int MAX_STACK_DEPTH = 36;
        public static final int REQUEST_TIMEOUT = 40;
        public static final int SIZE = 64;

        private InitOut() {
        }
    }

    /** INIT flag bits (64-bit; bits 32+ travel in flags2). */
    public static final class InitFlags {
        public static final long ASYNC_READ = 1L << 0;
        public static final long BIG_WRITES = 1L << 5;
        public static final long ASYNC_DIO = 1L << 15;
        public static final long MAX_PAGES = 1L << 22;
        public static final long INIT_EXT = 1L << 30;
        /** Shared mmap of a FOPEN_DIRECT_IO file is allowed (7.39); without it mmap fails with ENODEV. */
        public static final long DIRECT_IO_ALLOW_MMAP = 1L << 36;
        /** Opens may be answered with a backing file the kernel then reads and writes itself (7.40). */
        public static final long PASSTHROUGH = 1L << 37;
        public static final long OVER_IO_URING = 1L << 41;
        private static final long[] KNOWN = {ASYNC_READ, BIG_WRITES, ASYNC_DIO, MAX_PAGES, INIT_EXT,
                DIRECT_IO_ALLOW_MMAP, PASSTHROUGH, OVER_IO_URING};
        private static final String[] NAMES = {"ASYNC_READ", "BIG_WRITES", "ASYNC_DIO", "MAX_PAGES", "INIT_EXT",
                "DIRECT_IO_ALLOW_MMAP", "PASSTHROUGH", "OVER_IO_URING"};

        private InitFlags() {
        }

        /** The names of the flags blockfuse knows in {@code flags}, then any other bit as "bit N". */
        public static java.util.List<String> names(long flags) {
            java.util.List<String> out = new java.util.ArrayList<>();
            long rest = flags;
            for (int i = 0; i < KNOWN.length; i++) {
                if ((flags & KNOWN[i]) != 0) {
                    out.add(NAMES[i]);
                    rest &= ~KNOWN[i];
                }
            }
            for (int bit = 0; bit < 64; bit++) {
                if ((rest & (1L << bit)) != 0) {
                    out.add("bit " + bit);
                }
            }
            return out;
        }
    }

    /** struct fuse_getattr_in. */
    public static final class GetattrIn {
        public static final int GETATTR_FLAGS = 0;
        public static final int FH = 8;
        public static final int SIZE = 16;

        private GetattrIn() {
        }
    }

    /** struct fuse_attr_out, with struct fuse_attr at {@link #ATTR}. */
    public static final class AttrOut {
        public static final int ATTR_VALID = 0;
        public static final int ATTR_VALID_NSEC = 8;
        public static final int ATTR = 16;
        public static final int INO = ATTR + 0;
        public static final int SIZE_FIELD = ATTR + 8;
        public static final int BLOCKS = ATTR + 16;
        public static final int ATIME = ATTR + 24;
        public static final int MTIME = ATTR + 32;
        public static final int CTIME = ATTR + 40;
        public static final int ATIMENSEC = ATTR + 48;
        public static final int MTIMENSEC = ATTR + 52;
        public static final int CTIMENSEC = ATTR + 56;
        public static final int MODE = ATTR + 60;
        public static final int NLINK = ATTR + 64;
        public static final int UID = ATTR + 68;
        public static final int GID = ATTR + 72;
        public static final int RDEV = ATTR + 76;
        public static final int BLKSIZE = ATTR + 80;
        public static final int FLAGS = ATTR + 84;
        public static final int ATTR_SIZE = 88;
        public static final int SIZE = 104;

        private AttrOut() {
        }
    }

    /** struct fuse_setattr_in and its valid bits (FATTR_*). */
    public static final class SetattrIn {
        public static final int VALID = 0;
        public static final int FH = 8;
        public static final int SIZE_FIELD = 16;
        public static final int LOCK_OWNER = 24;
        public static final int ATIME = 32;
        public static final int MTIME = 40;
        public static final int CTIME = 48;
        public static final int MODE = 68;
        public static final int UID = 76;
        public static final int GID = 80;
        public static final int SIZE = 88;

        public static final int FATTR_MODE = 1;
        public static final int FATTR_UID = 2;
        public static final int FATTR_GID = 4;
        public static final int FATTR_SIZE = 8;
        public static final int FATTR_ATIME = 16;
        public static final int FATTR_MTIME = 32;
        public static final int FATTR_FH = 64;
        public static final int FATTR_ATIME_NOW = 128;
        public static final int FATTR_MTIME_NOW = 256;
        public static final int FATTR_LOCKOWNER = 512;
        public static final int FATTR_CTIME = 1024;
        public static final int FATTR_KILL_SUIDGID = 2048;

        private SetattrIn() {
        }
    }

    /** struct fuse_open_in / fuse_open_out and FOPEN_* flags. */
    public static final class OpenIn {
        public static final int FLAGS = 0;
        public static final int OPEN_FLAGS = 4;
        public static final int SIZE = 8;

        private OpenIn() {
        }
    }

    public static final class OpenOut {
        /** FUSE_DEV_IOC_BACKING_OPEN = _IOW(229, 1, struct fuse_backing_map): registers a backing file. */
        public static final long IOC_BACKING_OPEN = 0x4010E501L;
        /** FUSE_DEV_IOC_BACKING_CLOSE = _IOW(229, 2, uint32_t). */
        public static final long IOC_BACKING_CLOSE = 0x4004E502L;
        public static final int FH = 0;
        public static final int OPEN_FLAGS = 8;
        public static final int BACKING_ID = 12;
        public static final int SIZE = 16;
        /** No kernel page cache for this open: every read and write reaches the server. */
        public static final int FOPEN_DIRECT_IO = 1;
        /** Keep the kernel's page cache of the file across opens (the kernel drops it at every open otherwise). */
        public static final int FOPEN_KEEP_CACHE = 2;
        /** Without it, one slow direct WRITE blocks every other writer of the file. */
        public static final int FOPEN_PARALLEL_DIRECT_WRITES = 64;
        /** read/write/mmap of this open go to the backing file named by {@link #BACKING_ID}. */
        public static final int FOPEN_PASSTHROUGH = 128;

        private OpenOut() {
        }
    }

    /** struct fuse_read_in. */
    public static final class ReadIn {
        public static final int FH = 0;
        public static final int OFFSET = 8;
        public static final int SIZE_FIELD = 16;
        public static final int READ_FLAGS = 20;
        public static final int LOCK_OWNER = 24;
        public static final int FLAGS = 32;
        public static final int SIZE = 40;

        private ReadIn() {
        }
    }

    /** struct fuse_write_in (data follows it) and fuse_write_out. */
    public static final class WriteIn {
        public static final int FH = 0;
        public static final int OFFSET = 8;
        public static final int SIZE_FIELD = 16;
        public static final int WRITE_FLAGS = 20;
        public static final int LOCK_OWNER = 24;
        public static final int FLAGS = 32;
        public static final int SIZE = 40;

        private WriteIn() {
        }
    }

    public static final class WriteOut {
        public static final int SIZE_FIELD = 0;
        public static final int SIZE = 8;

        private WriteOut() {
        }
    }

    /** struct fuse_release_in. */
    public static final class ReleaseIn {
        public static final int FH = 0;
        public static final int FLAGS = 8;
        public static final int RELEASE_FLAGS = 12;
        public static final int LOCK_OWNER = 16;
        public static final int SIZE = 24;

        private ReleaseIn() {
        }
    }

    /** struct fuse_fsync_in. */
    public static final class FsyncIn {
        public static final int FH = 0;
        public static final int FSYNC_FLAGS = 8;
        public static final int SIZE = 16;

        private FsyncIn() {
        }
    }

    /** struct fuse_flush_in. */
    public static final class FlushIn {
        public static final int FH = 0;
        public static final int LOCK_OWNER = 16;
        public static final int SIZE = 24;

        private FlushIn() {
        }
    }

    /** struct fuse_interrupt_in. */
    public static final class InterruptIn {
        public static final int UNIQUE = 0;
        public static final int SIZE = 8;

        private InterruptIn() {
        }
    }

    /** struct fuse_forget_in and fuse_batch_forget_in. */
    public static final class ForgetIn {
        public static final int NLOOKUP = 0;
        public static final int SIZE = 8;

        private ForgetIn() {
        }
    }

    public static final class BatchForgetIn {
        public static final int COUNT = 0;
        public static final int SIZE = 8;

        private BatchForgetIn() {
        }
    }

    /** struct fuse_fallocate_in and the modes the kernel forwards. */
    public static final class FallocateIn {
        public static final int FH = 0;
        public static final int OFFSET = 8;
        public static final int LENGTH = 16;
        public static final int MODE = 24;
        public static final int SIZE = 32;

        public static final int KEEP_SIZE = 0x01;
        public static final int PUNCH_HOLE = 0x02;
        public static final int ZERO_RANGE = 0x10;

        private FallocateIn() {
        }
    }

    /** struct fuse_lseek_in / fuse_lseek_out. */
    public static final class LseekIn {
        public static final int FH = 0;
        public static final int OFFSET = 8;
        public static final int WHENCE = 16;
        public static final int SIZE = 24;
        public static final int SEEK_DATA = 3;
        public static final int SEEK_HOLE = 4;

        private LseekIn() {
        }
    }

    public static final class LseekOut {
        public static final int OFFSET = 0;
        public static final int SIZE = 8;

        private LseekOut() {
        }
    }

    /** struct fuse_kstatfs (the whole fuse_statfs_out). */
    public static final class StatfsOut {
        public static final int BLOCKS = 0;
        public static final int BFREE = 8;
        public static final int BAVAIL = 16;
        public static final int FILES = 24;
        public static final int FFREE = 32;
        public static final int BSIZE = 40;
        public static final int NAMELEN = 44;
        public static final int FRSIZE = 48;
        public static final int SIZE = 80;

        private StatfsOut() {
        }
    }
}
