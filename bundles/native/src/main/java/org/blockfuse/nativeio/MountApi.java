package org.blockfuse.nativeio;

import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Linux's file-descriptor mount API (fsopen, fsconfig, fsmount, move_mount; 5.2+, and
 * MOVE_MOUNT_BENEATH since 6.5). A mount made this way exists before it is placed anywhere, so it
 * can be initialised and probed first, then placed on a pinned descriptor, or beneath the mount
 * now at a path (so that unmounting the top one reveals it with no moment of nothing mounted).
 * The syscall numbers are the same on every architecture (they were added after the tables were unified).
 */
public final class MountApi {
    private static final long SYS_MOVE_MOUNT = 429;
    private static final long SYS_FSOPEN = 430;
    private static final long SYS_FSCONFIG = 431;
    private static final long SYS_FSMOUNT = 432;
    private static final int FSOPEN_CLOEXEC = 1;
    private static final int FSCONFIG_SET_FLAG = 0;
    private static final int FSCONFIG_SET_STRING = 1;
    private static final int FSCONFIG_CMD_CREATE = 6;
    private static final int FSMOUNT_CLOEXEC = 1;
    public static final int MOUNT_ATTR_NOSUID = 0x2;
    public static final int MOUNT_ATTR_NODEV = 0x4;
    private static final int MOVE_MOUNT_F_EMPTY_PATH = 0x4;
    private static final int MOVE_MOUNT_T_EMPTY_PATH = 0x40;
    private static final int MOVE_MOUNT_BENEATH = 0x200;
    /** statx: x86_64 332, aarch64 (and the other generic-table architectures) 291. */
    private static final long SYS_STATX = isX86_64() ? 332 : 291;
    private static final int AT_EMPTY_PATH = 0x1000;
    private static final int AT_STATX_DONT_SYNC = 0x4000;
    private static final int STATX_SIZE = 256;
    private static final int STX_DEV_MAJOR = 136;
    private static final int STX_DEV_MINOR = 140;

    private MountApi() {
    }

    /** An fsopen(2) context being configured. Close it once the mount exists (or on failure). */
    public static final class Context implements AutoCloseable {
        private final int fd;
        private final String fsType;

        private Context(int fd, String fsType) {
            this.fd = fd;
            this.fsType = fsType;
        }

        public Context set(String key, String value) throws NativeException {
            ByteBuffer k = cstring(key);
            ByteBuffer v = cstring(value);
            long r = Libc.syscall6(SYS_FSCONFIG, fd, FSCONFIG_SET_STRING, Libc.address(k), Libc.address(v), 0, 0);
            Reference.reachabilityFence(k);
            Reference.reachabilityFence(v);
            check(r, "fsconfig " + key + "=" + value);
            return this;
        }

        public Context flag(String key) throws NativeException {
            ByteBuffer k = cstring(key);
            long r = Libc.syscall6(SYS_FSCONFIG, fd, FSCONFIG_SET_FLAG, Libc.address(k), 0, 0, 0);
            Reference.reachabilityFence(k);
            check(r, "fsconfig " + key);
            return this;
        }

        /** Creates the superblock and returns a detached mount of it (an O_PATH-like descriptor). */
        public int mount(int attributes) throws NativeException {
            check(Libc.syscall6(SYS_FSCONFIG, fd, FSCONFIG_CMD_CREATE, 0, 0, 0, 0), "creating the " + fsType + " superblock");
            return (int) check(Libc.syscall3(SYS_FSMOUNT, fd, FSMOUNT_CLOEXEC, attributes), "fsmount");
        }

        /** Adds the kernel's own explanation, which it queues on the context descriptor. */
        private long check(long r, String what) throws NativeException {
            if (r < 0) {
                String detail = kernelMessages();
                throw new NativeException(what + (detail.isEmpty() ? "" : " [" + detail + "]"), (int) -r);
            }
            return r;
        }

        private String kernelMessages() {
            ByteBuffer buf = ByteBuffer.allocateDirect(512);
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < 8; i++) {
                long n = Libc.read(fd, Libc.address(buf), buf.capacity());
                if (n <= 0) {
                    break;
                }
                byte[] b = new byte[(int) n];
                buf.get(0, b);
                sb.append(sb.length() == 0 ? "" : "; ").append(new String(b, StandardCharsets.UTF_8).trim());
            }
            return sb.toString();
        }

        @Override
        public void close() {
            Libc.close(fd);
        }
    }

    /** fsopen(2). */
    public static Context open(String fsType) throws NativeException {
        ByteBuffer name = cstring(fsType);
        long fd = Libc.syscall3(SYS_FSOPEN, Libc.address(name), FSOPEN_CLOEXEC, 0);
        Reference.reachabilityFence(name);
        if (fd < 0) {
            throw new NativeException("fsopen " + fsType, (int) -fd);
        }
        return new Context((int) fd, fsType);
    }

    /** Places the detached mount {@code mountFd} on the file or folder {@code targetFd} (an O_PATH descriptor). */
    public static void attach(int mountFd, int targetFd) throws NativeException {
        move(mountFd, targetFd, 0, "move_mount");
    }

    /**
     * Places the detached mount {@code mountFd} beneath the mount whose root is {@code topFd}:
     * the top mount keeps serving the path until it is unmounted, then this one is there at once.
     */
    public static void attachBeneath(int mountFd, int topFd) throws NativeException {
        move(mountFd, topFd, MOVE_MOUNT_BENEATH, "move_mount beneath");
    }

    private static void move(int mountFd, int targetFd, int extra, String what) throws NativeException {
        ByteBuffer empty = cstring("");
        long r = Libc.syscall6(SYS_MOVE_MOUNT, mountFd, Libc.address(empty), targetFd, Libc.address(empty),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH | extra, 0);
        Reference.reachabilityFence(empty);
        if (r < 0) {
            throw new NativeException(what, (int) -r);
        }
    }

    /**
     * The device number of the filesystem {@code fd} is on, from cached attributes only
     * (AT_STATX_DONT_SYNC): for a FUSE mount that asks the server nothing, so it works before
     * anyone serves the connection. For FUSE the minor is the connection number.
     * @return {major, minor}
     */
    public static int[] device(int fd) throws NativeException {
        ByteBuffer buf = ByteBuffer.allocateDirect(STATX_SIZE).order(ByteOrder.nativeOrder());
        ByteBuffer empty = cstring("");
        long r = Libc.syscall6(SYS_STATX, fd, Libc.address(empty), AT_EMPTY_PATH | AT_STATX_DONT_SYNC, 0, Libc.address(buf), 0);
        Reference.reachabilityFence(empty);
        if (r < 0) {
            throw new NativeException("statx", (int) -r);
        }
        return new int[] {buf.getInt(STX_DEV_MAJOR), buf.getInt(STX_DEV_MINOR)};
    }

    private static ByteBuffer cstring(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocateDirect(b.length + 1);
        buf.put(b).put((byte) 0).flip();
        return buf;
    }

    private static boolean isX86_64() {
        String arch = System.getProperty("os.arch", "");
        return arch.equals("amd64") || arch.equals("x86_64");
    }
}
