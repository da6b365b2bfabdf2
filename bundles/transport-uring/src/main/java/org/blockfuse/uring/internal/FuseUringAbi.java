package org.blockfuse.uring.internal;

/**
 * FUSE-over-io_uring structures (include/uapi/linux/fuse.h, protocol 7.42+, as in Linux 6.18;
 * fact sheet §4.2). {@code AbiLayoutTest} pins every number.
 */
public final class FuseUringAbi {
    private FuseUringAbi() {
    }

    /** cmd_op of the URING_CMD SQE. */
    public static final int CMD_REGISTER = 1;
    public static final int CMD_COMMIT_AND_FETCH = 2;

    /** REGISTER passes exactly this many iovecs: header and payload. */
    public static final int IOV_SEGS = 2;

    /** struct fuse_uring_cmd_req (24 bytes), at {@link IoUringAbi.Sqe#CMD} of the SQE. */
    public static final class CmdReq {
        public static final int FLAGS = 0;
        public static final int COMMIT_ID = 8;
        public static final int QID = 16;
        public static final int SIZE = 24;

        private CmdReq() {
        }
    }

    /** struct fuse_uring_req_header (288 bytes): the entry's header buffer (iovec[0]). */
    public static final class ReqHeader {
        /** Kernel writes fuse_in_header here; we write fuse_out_header back. */
        public static final int IN_OUT = 0;
        public static final int IN_OUT_SIZE = 128;
        /** The request's first argument (the per-op struct). */
        public static final int OP_IN = 128;
        public static final int OP_IN_SIZE = 128;
        public static final int RING_ENT_IN_OUT = 256;
        public static final int SIZE = 288;

        private ReqHeader() {
        }
    }

    /** struct fuse_uring_ent_in_out (32 bytes), at {@link ReqHeader#RING_ENT_IN_OUT}. */
    public static final class EntInOut {
        public static final int FLAGS = 0;
        public static final int COMMIT_ID = 8;
        /** Kernel → us: bytes of request payload; us → kernel: bytes of reply payload. */
        public static final int PAYLOAD_SZ = 16;
        public static final int PADDING = 20;
        public static final int RESERVED = 24;
        public static final int SIZE = 32;

        private EntInOut() {
        }
    }
}
