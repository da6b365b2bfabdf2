package org.blockfuse.nativeio;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import com.kenai.jffi.MemoryIO;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/**
 * Checked wrappers over libc: each returns a result or throws {@link NativeException} naming the call.
 * Hot-path wrappers take raw addresses of direct buffers and return -errno instead of throwing.
 */
public final class Libc {
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_NONBLOCK = 04000;
    public static final int O_NOFOLLOW = 0400000;
    /** An fd that names a file without opening it for I/O (Linux 2.6.39). */
    public static final int O_PATH = 010000000;
    public static final int O_DIRECT = 040000;
    public static final int O_CLOEXEC = 02000000;

    public static final int SEEK_DATA = 3;
    public static final int SEEK_HOLE = 4;

    public static final int FALLOC_FL_KEEP_SIZE = 0x01;
    public static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    public static final int FALLOC_FL_ZERO_RANGE = 0x10;

    public static final long MS_NOSUID = 2;
    public static final long MS_NODEV = 4;
    public static final int MNT_FORCE = 1;
    public static final int MNT_DETACH = 2;

    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_POPULATE = 0x8000;

    private static final LibcBinding C;
    private static final Runtime RUNTIME;
    private static final MemoryIO MEMORY = MemoryIO.getInstance();

    static {
        // jnr-ffi's x86 asm stubs pass a garbage 6th integer argument (upstream issue #181): mmap breaks.
        System.setProperty("jnr.ffi.x86asm.enabled", "false");
        ClassLoader previous = Thread.currentThread().getContextClassLoader();
        Thread.currentThread().setContextClassLoader(Libc.class.getClassLoader());
        try {
            C = LibraryLoader.create(LibcBinding.class).load("c");
            RUNTIME = Runtime.getRuntime(C);
        } finally {
            Thread.currentThread().setContextClassLoader(previous);
        }
    }

    private Libc() {
    }

    /** The raw binding, for callers that check results themselves. */
    public static LibcBinding raw() {
        return C;
    }

    public static int errno() {
        return RUNTIME.getLastError();
    }

    public static String strerror(int errno) {
        String s = C.strerror(errno);
        return s == null ? "errno " + errno : s;
    }

    private static NativeException fail(String call) {
        return new NativeException(call, errno());
    }

    public static int open(String path, int flags, int mode) throws NativeException {
        int fd = C.open(path, flags | O_CLOEXEC, mode);
        if (fd < 0) {
            throw fail("open " + path);
        }
        return fd;
    }

    /** Closes quietly: a failing close of an fd we own has nothing left to tell. */
    public static void close(int fd) {
        if (fd >= 0) {
            C.close(fd);
        }
    }

    /** read(2) into direct memory; returns bytes read or -errno. */
    public static long read(int fd, long address, long count) {
        long n = C.read(fd, address, count);
        return n < 0 ? -errno() : n;
    }

    /** write(2) from direct memory; returns bytes written or -errno. */
    public static long write(int fd, long address, long count) {
        long n = C.write(fd, address, count);
        return n < 0 ? -errno() : n;
    }

    /** writev(2) of an iovec array in direct memory; returns bytes written or -errno. */
    public static long writev(int fd, long iov, int count) {
        long n = C.writev(fd, iov, count);
        return n < 0 ? -errno() : n;
    }

    /** pread(2) into direct memory; returns bytes read or -errno. */
    public static long pread(int fd, long address, long count, long offset) {
        long n = C.pread(fd, address, count, offset);
        return n < 0 ? -errno() : n;
    }

    /** pwrite(2) from direct memory; returns bytes written or -errno. */
    public static long pwrite(int fd, long address, long count, long offset) {
        long n = C.pwrite(fd, address, count, offset);
        return n < 0 ? -errno() : n;
    }

    public static void ioctl(int fd, long request, long arg, String what) throws NativeException {
        if (C.ioctl(fd, request, arg) < 0) {
            throw fail(what);
        }
    }

    /** ioctl(2) whose result is a value (e.g. an id); returns it or -errno. */
    public static int ioctlValue(int fd, long request, long arg) {
        int r = C.ioctl(fd, request, arg);
        return r < 0 ? -errno() : r;
    }

    public static void mount(String source, String target, String fstype, long flags, String data)
            throws NativeException {
        if (C.mount(source, target, fstype, flags, data) < 0) {
            throw fail("mount " + target);
        }
    }

    /** umount2(2); returns 0 or -errno. */
    public static int umount2(String target, int flags) {
        return C.umount2(target, flags) < 0 ? -errno() : 0;
    }

    /** fallocate(2); returns 0 or -errno. */
    public static int fallocate(int fd, int mode, long offset, long length) {
        return C.fallocate(fd, mode, offset, length) < 0 ? -errno() : 0;
    }

    public static void fdatasync(int fd) throws NativeException {
        if (C.fdatasync(fd) < 0) {
            throw fail("fdatasync");
        }
    }

    public static void ftruncate(int fd, long length) throws NativeException {
        if (C.ftruncate(fd, length) < 0) {
            throw fail("ftruncate");
        }
    }

    /** lseek(2); returns the offset or -errno (SEEK_DATA/SEEK_HOLE give -ENXIO past the data). */
    public static long lseek(int fd, long offset, int whence) {
        long r = C.lseek(fd, offset, whence);
        return r < 0 ? -errno() : r;
    }

    public static Stat fstat(int fd) throws NativeException {
        ByteBuffer buf = ByteBuffer.allocateDirect(Stat.SIZE).order(ByteOrder.nativeOrder());
        if (C.fstat(fd, address(buf)) < 0) {
            throw fail("fstat");
        }
        return Stat.from(buf);
    }

    public static int getuid() {
        return C.getuid();
    }

    public static int getgid() {
        return C.getgid();
    }

    public static int geteuid() {
        return C.geteuid();
    }

    /** syscall(2) with up to three arguments; returns the result or -errno. */
    public static long syscall3(long number, long a1, long a2, long a3) {
        long r = C.syscall(number, a1, a2, a3);
        return r == -1 ? -errno() : r;
    }

    /** syscall(2) with up to six arguments; returns the result or -errno. */
    public static long syscall6(long number, long a1, long a2, long a3, long a4, long a5, long a6) {
        long r = C.syscall(number, a1, a2, a3, a4, a5, a6);
        return r == -1 ? -errno() : r;
    }

    public static long mmap(long length, int prot, int flags, int fd, long offset) throws NativeException {
        long addr = C.mmap(0, length, prot, flags, fd, offset);
        if (addr == -1) {
            throw fail("mmap");
        }
        return addr;
    }

    public static void munmap(long address, long length) {
        C.munmap(address, length);
    }

    public static int eventfd(int initial, int flags) throws NativeException {
        int fd = C.eventfd(initial, flags);
        if (fd < 0) {
            throw fail("eventfd");
        }
        return fd;
    }

    /** Lets the calling thread run on every CPU again; 0 or -errno. */
    public static int unpin() {
        ByteBuffer mask = ByteBuffer.allocateDirect(128).order(ByteOrder.nativeOrder());
        for (int i = 0; i < 128; i++) {
            mask.put(i, (byte) 0xff); // the kernel keeps only the CPUs that exist
        }
        int r = C.sched_setaffinity(0, 128, address(mask));
        java.lang.ref.Reference.reachabilityFence(mask);
        return r < 0 ? -errno() : 0;
    }

    /** The CPU the calling thread runs on now (a hint: it may move right after), or -1. */
    public static int currentCpu() {
        return C.sched_getcpu();
    }

    /** Pins the calling thread to one CPU; returns 0 or -errno. */
    public static int pinToCpu(int cpu) {
        ByteBuffer mask = ByteBuffer.allocateDirect(128).order(ByteOrder.nativeOrder());
        mask.put(cpu / 8, (byte) (1 << (cpu % 8)));
        int r = C.sched_setaffinity(0, 128, address(mask));
        java.lang.ref.Reference.reachabilityFence(mask); // only its address went to the kernel
        return r < 0 ? -errno() : 0;
    }

    /** Address of a direct buffer's first byte (its position is not added). */
    public static long address(ByteBuffer direct) {
        if (!direct.isDirect()) {
            throw new IllegalArgumentException("the kernel needs direct memory, not a heap buffer");
        }
        return MEMORY.getDirectBufferAddress(direct);
    }

    /** A little-endian view over native memory we own (e.g. an mmapped ring). Frees nothing. */
    public static ByteBuffer wrap(long address, int capacity) {
        return MEMORY.newDirectByteBuffer(address, capacity).order(ByteOrder.nativeOrder());
    }

    /** A direct buffer aligned to {@code alignment} bytes (for O_DIRECT and ring payloads). */
    public static ByteBuffer allocateAligned(int capacity, int alignment) {
        // alignedSlice also rounds the end down, so reserve whole alignment units plus one
        int rounded = (capacity + alignment - 1) / alignment * alignment;
        ByteBuffer raw = ByteBuffer.allocateDirect(rounded + alignment);
        return raw.alignedSlice(alignment).limit(capacity).slice().order(ByteOrder.nativeOrder());
    }
}
