package org.blockfuse.nativeio;

/**
 * The three io_uring system calls (x86_64 numbers from asm/unistd_64.h). Ring layouts, SQE/CQE
 * formats and the mmapped queues live with their users; this class only enters the kernel.
 * Results are returned as values or -errno, never thrown: callers are on hot paths.
 */
public final class IoUringSys {
    public static final long SYS_IO_URING_SETUP = 425;
    public static final long SYS_IO_URING_ENTER = 426;
    public static final long SYS_IO_URING_REGISTER = 427;

    private IoUringSys() {
    }

    /** io_uring_setup(2): {@code params} is the address of a zeroed, filled-in struct io_uring_params. */
    public static int setup(int entries, long params) {
        return (int) Libc.syscall3(SYS_IO_URING_SETUP, entries, params, 0);
    }

    /** io_uring_enter(2) without a signal mask; returns the number of SQEs consumed or -errno. */
    public static int enter(int ringFd, int toSubmit, int minComplete, int flags) {
        return (int) Libc.syscall6(SYS_IO_URING_ENTER, ringFd, toSubmit, minComplete, flags, 0, 0);
    }

    /** io_uring_register(2); returns the result or -errno. */
    public static int register(int ringFd, int opcode, long arg, int nrArgs) {
        return (int) Libc.syscall6(SYS_IO_URING_REGISTER, ringFd, opcode, arg, nrArgs, 0, 0);
    }
}
