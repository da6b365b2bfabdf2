package org.blockfuse.uring.internal;

/**
 * The io_uring ABI this transport uses, as named byte offsets and constants. Source: liburing's
 * {@code io_uring.h} (current) cross-checked with the Linux 6.1 UAPI header installed here and the
 * 6.18 fact sheet ({@code fuse-kernel-protocol.md} §4.1). {@code AbiLayoutTest} pins every number.
 */
public final class IoUringAbi {
    private IoUringAbi() {
    }

    /** Setup flags (io_uring_params.flags). */
    public static final int SETUP_CQSIZE = 1 << 3;
    public static final int SETUP_SUBMIT_ALL = 1 << 7;
    /** 128-byte SQEs: the FUSE command lives in the extended part; mandatory for FUSE rings. */
    public static final int SETUP_SQE128 = 1 << 10;

    /** Feature bits returned by setup. */
    public static final int FEAT_SINGLE_MMAP = 1;

    /** mmap offsets of the three regions of a ring. */
    public static final long OFF_SQ_RING = 0L;
    public static final long OFF_CQ_RING = 0x8000000L;
    public static final long OFF_SQES = 0x10000000L;

    /** io_uring_enter flags. */
    public static final int ENTER_GETEVENTS = 1;

    /** SQ ring flags (at sq_off.flags). */
    public static final int SQ_CQ_OVERFLOW = 1 << 1;

    /** Opcodes. */
    public static final int OP_NOP = 0;
    public static final int OP_READ = 22;
    public static final int OP_URING_CMD = 46;

    /** struct io_uring_params (120 bytes). */
    public static final class Params {
        public static final int SQ_ENTRIES = 0;
        public static final int CQ_ENTRIES = 4;
        public static final int FLAGS = 8;
        public static final int SQ_THREAD_CPU = 12;
        public static final int SQ_THREAD_IDLE = 16;
        public static final int FEATURES = 20;
        public static final int WQ_FD = 24;
        public static final int RESV = 28;
        public static final int SQ_OFF = 40;
        public static final int CQ_OFF = 80;
        public static final int SIZE = 120;

        private Params() {
        }
    }

    /** struct io_sqring_offsets (40 bytes, inside Params at {@link Params#SQ_OFF}); values are offsets into the SQ ring. */
    public static final class SqOffsets {
        public static final int HEAD = 0;
        public static final int TAIL = 4;
        public static final int RING_MASK = 8;
        public static final int RING_ENTRIES = 12;
        public static final int FLAGS = 16;
        public static final int DROPPED = 20;
        public static final int ARRAY = 24;
        public static final int RESV1 = 28;
        public static final int USER_ADDR = 32;
        public static final int SIZE = 40;

        private SqOffsets() {
        }
    }

    /** struct io_cqring_offsets (40 bytes, inside Params at {@link Params#CQ_OFF}); values are offsets into the CQ ring. */
    public static final class CqOffsets {
        public static final int HEAD = 0;
        public static final int TAIL = 4;
        public static final int RING_MASK = 8;
        public static final int RING_ENTRIES = 12;
        public static final int OVERFLOW = 16;
        public static final int CQES = 20;
        public static final int FLAGS = 24;
        public static final int RESV1 = 28;
        public static final int USER_ADDR = 32;
        public static final int SIZE = 40;

        private CqOffsets() {
        }
    }

    /** struct io_uring_sqe, 128-byte variant (SETUP_SQE128). */
    public static final class Sqe {
        public static final int OPCODE = 0;
        public static final int FLAGS = 1;
        public static final int IOPRIO = 2;
        public static final int FD = 4;
        /** union: u64 off (READ) / u32 cmd_op + u32 __pad1 (URING_CMD). */
        public static final int OFF = 8;
        public static final int CMD_OP = 8;
        public static final int ADDR = 16;
        public static final int LEN = 24;
        /** union: rw_flags / uring_cmd_flags / ... */
        public static final int OP_FLAGS = 28;
        public static final int USER_DATA = 32;
        public static final int BUF_INDEX = 40;
        public static final int PERSONALITY = 42;
        public static final int FILE_INDEX = 44;
        /** Start of the command area of URING_CMD (16 bytes in a 64-byte SQE, 80 with SQE128). */
        public static final int CMD = 48;
        public static final int CMD_SIZE = 80;
        public static final int SIZE = 128;

        private Sqe() {
        }
    }

    /** struct io_uring_cqe (16 bytes; no CQE32). */
    public static final class Cqe {
        public static final int USER_DATA = 0;
        public static final int RES = 8;
        public static final int FLAGS = 12;
        public static final int SIZE = 16;

        private Cqe() {
        }
    }

    /** struct iovec. */
    public static final class Iovec {
        public static final int BASE = 0;
        public static final int LEN = 8;
        public static final int SIZE = 16;

        private Iovec() {
        }
    }
}
