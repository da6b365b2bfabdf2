package org.blockfuse.uring.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.stream.Stream;

import org.blockfuse.uring.internal.FuseUringAbi.CmdReq;
import org.blockfuse.uring.internal.FuseUringAbi.EntInOut;
import org.blockfuse.uring.internal.FuseUringAbi.ReqHeader;
import org.blockfuse.uring.internal.IoUringAbi.CqOffsets;
import org.blockfuse.uring.internal.IoUringAbi.Cqe;
import org.blockfuse.uring.internal.IoUringAbi.Params;
import org.blockfuse.uring.internal.IoUringAbi.SqOffsets;
import org.blockfuse.uring.internal.IoUringAbi.Sqe;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every struct offset and constant we use against the numbers of the fact sheet
 * (fuse-kernel-protocol.md §4.1/§4.2, computed with a C compiler from the 6.18-era headers).
 */
class AbiLayoutTest {
    static Stream<Arguments> layout() {
        return Stream.of(
                // struct io_uring_params
                Arguments.of("params.sq_entries", Params.SQ_ENTRIES, 0),
                Arguments.of("params.cq_entries", Params.CQ_ENTRIES, 4),
                Arguments.of("params.flags", Params.FLAGS, 8),
                Arguments.of("params.sq_thread_cpu", Params.SQ_THREAD_CPU, 12),
                Arguments.of("params.sq_thread_idle", Params.SQ_THREAD_IDLE, 16),
                Arguments.of("params.features", Params.FEATURES, 20),
                Arguments.of("params.wq_fd", Params.WQ_FD, 24),
                Arguments.of("params.resv", Params.RESV, 28),
                Arguments.of("params.sq_off", Params.SQ_OFF, 40),
                Arguments.of("params.cq_off", Params.CQ_OFF, 80),
                Arguments.of("sizeof(io_uring_params)", Params.SIZE, 120),
                // struct io_sqring_offsets
                Arguments.of("sq_off.head", SqOffsets.HEAD, 0),
                Arguments.of("sq_off.tail", SqOffsets.TAIL, 4),
                Arguments.of("sq_off.ring_mask", SqOffsets.RING_MASK, 8),
                Arguments.of("sq_off.ring_entries", SqOffsets.RING_ENTRIES, 12),
                Arguments.of("sq_off.flags", SqOffsets.FLAGS, 16),
                Arguments.of("sq_off.dropped", SqOffsets.DROPPED, 20),
                Arguments.of("sq_off.array", SqOffsets.ARRAY, 24),
                Arguments.of("sq_off.resv1", SqOffsets.RESV1, 28),
                Arguments.of("sq_off.user_addr", SqOffsets.USER_ADDR, 32),
                Arguments.of("sizeof(io_sqring_offsets)", SqOffsets.SIZE, 40),
                // struct io_cqring_offsets
                Arguments.of("cq_off.head", CqOffsets.HEAD, 0),
                Arguments.of("cq_off.tail", CqOffsets.TAIL, 4),
                Arguments.of("cq_off.ring_mask", CqOffsets.RING_MASK, 8),
                Arguments.of("cq_off.ring_entries", CqOffsets.RING_ENTRIES, 12),
                Arguments.of("cq_off.overflow", CqOffsets.OVERFLOW, 16),
                Arguments.of("cq_off.cqes", CqOffsets.CQES, 20),
                Arguments.of("cq_off.flags", CqOffsets.FLAGS, 24),
                Arguments.of("cq_off.resv1", CqOffsets.RESV1, 28),
                Arguments.of("cq_off.user_addr", CqOffsets.USER_ADDR, 32),
                Arguments.of("sizeof(io_cqring_offsets)", CqOffsets.SIZE, 40),
                // struct io_uring_sqe (SQE128)
                Arguments.of("sqe.opcode", Sqe.OPCODE, 0),
                Arguments.of("sqe.flags", Sqe.FLAGS, 1),
                Arguments.of("sqe.ioprio", Sqe.IOPRIO, 2),
                Arguments.of("sqe.fd", Sqe.FD, 4),
                Arguments.of("sqe.off", Sqe.OFF, 8),
                Arguments.of("sqe.cmd_op", Sqe.CMD_OP, 8),
                Arguments.of("sqe.addr", Sqe.ADDR, 16),
                Arguments.of("sqe.len", Sqe.LEN, 24),
                Arguments.of("sqe.uring_cmd_flags", Sqe.OP_FLAGS, 28),
                Arguments.of("sqe.user_data", Sqe.USER_DATA, 32),
                Arguments.of("sqe.buf_index", Sqe.BUF_INDEX, 40),
                Arguments.of("sqe.personality", Sqe.PERSONALITY, 42),
                Arguments.of("sqe.file_index", Sqe.FILE_INDEX, 44),
                Arguments.of("sqe.cmd", Sqe.CMD, 48),
                Arguments.of("sqe.cmd size with SQE128", Sqe.CMD_SIZE, 80),
                Arguments.of("sizeof(sqe) with SQE128", Sqe.SIZE, 128),
                // struct io_uring_cqe
                Arguments.of("cqe.user_data", Cqe.USER_DATA, 0),
                Arguments.of("cqe.res", Cqe.RES, 8),
                Arguments.of("cqe.flags", Cqe.FLAGS, 12),
                Arguments.of("sizeof(cqe)", Cqe.SIZE, 16),
                // constants
                Arguments.of("IORING_SETUP_SQE128", IoUringAbi.SETUP_SQE128, 1 << 10),
                Arguments.of("IORING_SETUP_SUBMIT_ALL", IoUringAbi.SETUP_SUBMIT_ALL, 1 << 7),
                Arguments.of("IORING_SETUP_CQSIZE", IoUringAbi.SETUP_CQSIZE, 1 << 3),
                Arguments.of("IORING_FEAT_SINGLE_MMAP", IoUringAbi.FEAT_SINGLE_MMAP, 1),
                Arguments.of("IORING_OFF_CQ_RING", (int) IoUringAbi.OFF_CQ_RING, 0x8000000),
                Arguments.of("IORING_OFF_SQES", (int) IoUringAbi.OFF_SQES, 0x10000000),
                Arguments.of("IORING_ENTER_GETEVENTS", IoUringAbi.ENTER_GETEVENTS, 1),
                Arguments.of("IORING_SQ_CQ_OVERFLOW", IoUringAbi.SQ_CQ_OVERFLOW, 2),
                Arguments.of("IORING_OP_NOP", IoUringAbi.OP_NOP, 0),
                Arguments.of("IORING_OP_READ", IoUringAbi.OP_READ, 22),
                Arguments.of("IORING_OP_URING_CMD", IoUringAbi.OP_URING_CMD, 46),
                // struct fuse_uring_cmd_req
                Arguments.of("cmd_req.flags", CmdReq.FLAGS, 0),
                Arguments.of("cmd_req.commit_id", CmdReq.COMMIT_ID, 8),
                Arguments.of("cmd_req.qid", CmdReq.QID, 16),
                Arguments.of("sizeof(fuse_uring_cmd_req)", CmdReq.SIZE, 24),
                Arguments.of("cmd_req.commit_id in the SQE", Sqe.CMD + CmdReq.COMMIT_ID, 56),
                Arguments.of("cmd_req.qid in the SQE", Sqe.CMD + CmdReq.QID, 64),
                Arguments.of("FUSE_IO_URING_CMD_REGISTER", FuseUringAbi.CMD_REGISTER, 1),
                Arguments.of("FUSE_IO_URING_CMD_COMMIT_AND_FETCH", FuseUringAbi.CMD_COMMIT_AND_FETCH, 2),
                Arguments.of("FUSE_URING_IOV_SEGS", FuseUringAbi.IOV_SEGS, 2),
                // struct fuse_uring_req_header and fuse_uring_ent_in_out
                Arguments.of("header.in_out", ReqHeader.IN_OUT, 0),
                Arguments.of("header.in_out size", ReqHeader.IN_OUT_SIZE, 128),
                Arguments.of("header.op_in", ReqHeader.OP_IN, 128),
                Arguments.of("header.op_in size", ReqHeader.OP_IN_SIZE, 128),
                Arguments.of("header.ring_ent_in_out", ReqHeader.RING_ENT_IN_OUT, 256),
                Arguments.of("sizeof(fuse_uring_req_header)", ReqHeader.SIZE, 288),
                Arguments.of("ent_in_out.flags", EntInOut.FLAGS, 0),
                Arguments.of("ent_in_out.commit_id", EntInOut.COMMIT_ID, 8),
                Arguments.of("ent_in_out.payload_sz", EntInOut.PAYLOAD_SZ, 16),
                Arguments.of("ent_in_out.padding", EntInOut.PADDING, 20),
                Arguments.of("ent_in_out.reserved", EntInOut.RESERVED, 24),
                Arguments.of("sizeof(fuse_uring_ent_in_out)", EntInOut.SIZE, 32),
                Arguments.of("commit_id in the header buffer", ReqHeader.RING_ENT_IN_OUT + EntInOut.COMMIT_ID, 264),
                Arguments.of("payload_sz in the header buffer", ReqHeader.RING_ENT_IN_OUT + EntInOut.PAYLOAD_SZ, 272));
    }

    @ParameterizedTest(name = "{0} = {2}")
    @MethodSource("layout")
    void matchesTheFactSheet(String what, int actual, int expected) {
        assertEquals(expected, actual, what);
    }
}
