package org.blockfuse.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.stream.Stream;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every struct size and field offset against the numbers of the fact sheet (fuse.h, Linux 6.18, 7.45). */
class FuseAbiTest {
    static Stream<Arguments> layout() {
        return Stream.of(
            Arguments.of("fuse_in_header size", 40, FuseAbi.InHeader.SIZE),
            Arguments.of("in.len", 0, FuseAbi.InHeader.LEN),
            Arguments.of("in.opcode", 4, FuseAbi.InHeader.OPCODE),
            Arguments.of("in.unique", 8, FuseAbi.InHeader.UNIQUE),
            Arguments.of("in.nodeid", 16, FuseAbi.InHeader.NODEID),
            Arguments.of("in.uid", 24, FuseAbi.InHeader.UID),
            Arguments.of("in.gid", 28, FuseAbi.InHeader.GID),
            Arguments.of("in.pid", 32, FuseAbi.InHeader.PID),
            Arguments.of("in.total_extlen", 36, FuseAbi.InHeader.TOTAL_EXTLEN),
            Arguments.of("fuse_out_header size", 16, FuseAbi.OutHeader.SIZE),
            Arguments.of("out.error", 4, FuseAbi.OutHeader.ERROR),
            Arguments.of("out.unique", 8, FuseAbi.OutHeader.UNIQUE),
            Arguments.of("fuse_init_in size", 64, FuseAbi.InitIn.SIZE),
            Arguments.of("init_in.max_readahead", 8, FuseAbi.InitIn.MAX_READAHEAD),
            Arguments.of("init_in.flags", 12, FuseAbi.InitIn.FLAGS),
            Arguments.of("init_in.flags2", 16, FuseAbi.InitIn.FLAGS2),
            Arguments.of("fuse_init_out size", 64, FuseAbi.InitOut.SIZE),
            Arguments.of("init_out.max_readahead", 8, FuseAbi.InitOut.MAX_READAHEAD),
            Arguments.of("init_out.flags", 12, FuseAbi.InitOut.FLAGS),
            Arguments.of("init_out.max_background", 16, FuseAbi.InitOut.MAX_BACKGROUND),
            Arguments.of("init_out.congestion_threshold", 18, FuseAbi.InitOut.CONGESTION_THRESHOLD),
            Arguments.of("init_out.max_write", 20, FuseAbi.InitOut.MAX_WRITE),
            Arguments.of("init_out.time_gran", 24, FuseAbi.InitOut.TIME_GRAN),
            Arguments.of("init_out.max_pages", 28, FuseAbi.InitOut.MAX_PAGES),
            Arguments.of("init_out.map_alignment", 30, FuseAbi.InitOut.MAP_ALIGNMENT),
            Arguments.of("init_out.flags2", 32, FuseAbi.InitOut.FLAGS2),
            Arguments.of("init_out.max_stack_depth", 36, FuseAbi.InitOut.MAX_STACK_DEPTH),
            Arguments.of("init_out.request_timeout", 40, FuseAbi.InitOut.REQUEST_TIMEOUT),
            Arguments.of("fuse_getattr_in size", 16, FuseAbi.GetattrIn.SIZE),
            Arguments.of("getattr_in.fh", 8, FuseAbi.GetattrIn.FH),
            Arguments.of("fuse_attr_out size", 104, FuseAbi.AttrOut.SIZE),
            Arguments.of("fuse_attr size", 88, FuseAbi.AttrOut.ATTR_SIZE),
            Arguments.of("attr_out.attr", 16, FuseAbi.AttrOut.ATTR),
            Arguments.of("attr.size", 16 + 8, FuseAbi.AttrOut.SIZE_FIELD),
            Arguments.of("attr.blocks", 16 + 16, FuseAbi.AttrOut.BLOCKS),
            Arguments.of("attr.atime", 16 + 24, FuseAbi.AttrOut.ATIME),
            Arguments.of("attr.ctimensec", 16 + 56, FuseAbi.AttrOut.CTIMENSEC),
            Arguments.of("attr.mode", 16 + 60, FuseAbi.AttrOut.MODE),
            Arguments.of("attr.nlink", 16 + 64, FuseAbi.AttrOut.NLINK),
            Arguments.of("attr.uid", 16 + 68, FuseAbi.AttrOut.UID),
            Arguments.of("attr.gid", 16 + 72, FuseAbi.AttrOut.GID),
            Arguments.of("attr.rdev", 16 + 76, FuseAbi.AttrOut.RDEV),
            Arguments.of("attr.blksize", 16 + 80, FuseAbi.AttrOut.BLKSIZE),
            Arguments.of("attr.flags", 16 + 84, FuseAbi.AttrOut.FLAGS),
            Arguments.of("fuse_setattr_in size", 88, FuseAbi.SetattrIn.SIZE),
            Arguments.of("setattr.fh", 8, FuseAbi.SetattrIn.FH),
            Arguments.of("setattr.size", 16, FuseAbi.SetattrIn.SIZE_FIELD),
            Arguments.of("setattr.lock_owner", 24, FuseAbi.SetattrIn.LOCK_OWNER),
            Arguments.of("setattr.atime", 32, FuseAbi.SetattrIn.ATIME),
            Arguments.of("setattr.mode", 68, FuseAbi.SetattrIn.MODE),
            Arguments.of("setattr.uid", 76, FuseAbi.SetattrIn.UID),
            Arguments.of("setattr.gid", 80, FuseAbi.SetattrIn.GID),
            Arguments.of("fuse_open_in size", 8, FuseAbi.OpenIn.SIZE),
            Arguments.of("open_in.open_flags", 4, FuseAbi.OpenIn.OPEN_FLAGS),
            Arguments.of("fuse_open_out size", 16, FuseAbi.OpenOut.SIZE),
            Arguments.of("open_out.open_flags", 8, FuseAbi.OpenOut.OPEN_FLAGS),
            Arguments.of("open_out.backing_id", 12, FuseAbi.OpenOut.BACKING_ID),
            Arguments.of("FOPEN_PARALLEL_DIRECT_WRITES", 64, FuseAbi.OpenOut.FOPEN_PARALLEL_DIRECT_WRITES),
            Arguments.of("fuse_read_in size", 40, FuseAbi.ReadIn.SIZE),
            Arguments.of("read_in.offset", 8, FuseAbi.ReadIn.OFFSET),
            Arguments.of("read_in.size", 16, FuseAbi.ReadIn.SIZE_FIELD),
            Arguments.of("read_in.read_flags", 20, FuseAbi.ReadIn.READ_FLAGS),
            Arguments.of("read_in.lock_owner", 24, FuseAbi.ReadIn.LOCK_OWNER),
            Arguments.of("read_in.flags", 32, FuseAbi.ReadIn.FLAGS),
            Arguments.of("fuse_write_in size", 40, FuseAbi.WriteIn.SIZE),
            Arguments.of("write_in.offset", 8, FuseAbi.WriteIn.OFFSET),
            Arguments.of("write_in.size", 16, FuseAbi.WriteIn.SIZE_FIELD),
            Arguments.of("write_in.write_flags", 20, FuseAbi.WriteIn.WRITE_FLAGS),
            Arguments.of("fuse_write_out size", 8, FuseAbi.WriteOut.SIZE),
            Arguments.of("fuse_flush_in size", 24, FuseAbi.FlushIn.SIZE),
            Arguments.of("flush_in.lock_owner", 16, FuseAbi.FlushIn.LOCK_OWNER),
            Arguments.of("fuse_fsync_in size", 16, FuseAbi.FsyncIn.SIZE),
            Arguments.of("fsync_in.fsync_flags", 8, FuseAbi.FsyncIn.FSYNC_FLAGS),
            Arguments.of("fuse_release_in size", 24, FuseAbi.ReleaseIn.SIZE),
            Arguments.of("release_in.release_flags", 12, FuseAbi.ReleaseIn.RELEASE_FLAGS),
            Arguments.of("fuse_fallocate_in size", 32, FuseAbi.FallocateIn.SIZE),
            Arguments.of("fallocate_in.length", 16, FuseAbi.FallocateIn.LENGTH),
            Arguments.of("fallocate_in.mode", 24, FuseAbi.FallocateIn.MODE),
            Arguments.of("fuse_lseek_in size", 24, FuseAbi.LseekIn.SIZE),
            Arguments.of("lseek_in.whence", 16, FuseAbi.LseekIn.WHENCE),
            Arguments.of("fuse_lseek_out size", 8, FuseAbi.LseekOut.SIZE),
            Arguments.of("fuse_kstatfs size", 80, FuseAbi.StatfsOut.SIZE),
            Arguments.of("statfs.bsize", 40, FuseAbi.StatfsOut.BSIZE),
            Arguments.of("statfs.namelen", 44, FuseAbi.StatfsOut.NAMELEN),
            Arguments.of("statfs.frsize", 48, FuseAbi.StatfsOut.FRSIZE),
            Arguments.of("fuse_interrupt_in size", 8, FuseAbi.InterruptIn.SIZE),
            Arguments.of("fuse_batch_forget_in size", 8, FuseAbi.BatchForgetIn.SIZE),
            Arguments.of("opcode INIT", 26, FuseAbi.Op.INIT),
            Arguments.of("opcode LSEEK", 46, FuseAbi.Op.LSEEK),
            Arguments.of("opcode FALLOCATE", 43, FuseAbi.Op.FALLOCATE),
            Arguments.of("opcode BATCH_FORGET", 42, FuseAbi.Op.BATCH_FORGET),
            Arguments.of("opcode INTERRUPT", 36, FuseAbi.Op.INTERRUPT));
    }

    @ParameterizedTest(name = "{0} = {1}")
    @MethodSource("layout")
    void matchesTheKernelHeader(String what, int expected, int actual) {
        assertEquals(expected, actual, what);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("flags")
    void initFlagBits(String what, long expected, long actual) {
        assertEquals(expected, actual, what);
    }

    static Stream<Arguments> flags() {
        return Stream.of(
            Arguments.of("FUSE_ASYNC_READ", 1L, FuseAbi.InitFlags.ASYNC_READ),
            Arguments.of("FUSE_BIG_WRITES", 1L << 5, FuseAbi.InitFlags.BIG_WRITES),
            Arguments.of("FUSE_ASYNC_DIO", 1L << 15, FuseAbi.InitFlags.ASYNC_DIO),
            Arguments.of("FUSE_MAX_PAGES", 1L << 22, FuseAbi.InitFlags.MAX_PAGES),
            Arguments.of("FUSE_INIT_EXT", 1L << 30, FuseAbi.InitFlags.INIT_EXT),
            Arguments.of("FUSE_OVER_IO_URING (flags2 0x200)", 0x200L << 32, FuseAbi.InitFlags.OVER_IO_URING));
    }
}
