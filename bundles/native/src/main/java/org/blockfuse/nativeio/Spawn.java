package org.blockfuse.nativeio;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a helper program (fusermount3) with one end of a Unix socket pair as a chosen descriptor,
 * which {@link ProcessBuilder} cannot do (its children inherit no descriptor but 0, 1 and 2).
 * posix_spawn with file actions: the socket becomes the child's descriptor {@link #CHILD_FD}, stderr
 * goes to a pipe we read, every other descriptor is closed in the child, and the environment is
 * exactly what the caller gives (no inherited PATH or LD_* for a setuid helper).
 */
public final class Spawn {
    /** The descriptor number the child sees the socket as. */
    public static final int CHILD_FD = 3;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 02000000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int WNOHANG = 1;
    private static final int SIGKILL = 9;
    private static final int SO_RCVTIMEO = 20;

    /** What the child did: its exit status (or -signal), its stderr, and a descriptor it sent us (or -1). */
    public record Result(int exit, String stderr, int receivedFd) {
    }

    private Spawn() {
    }

    /**
     * Runs {@code argv} (argv[0] an absolute path) with {@code env}, handing it a socket as fd
     * {@link #CHILD_FD}; collects one descriptor the child sends over it (SCM_RIGHTS), if any, and
     * waits for it to exit, at most {@code timeoutMillis} (then it is killed).
     */
    public static Result run(List<String> argv, List<String> env, long timeoutMillis) throws NativeException {
        LibcBinding c = Libc.raw();
        ByteBuffer pair = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        if (c.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, Libc.address(pair)) < 0) {
            throw new NativeException("socketpair", Libc.errno());
        }
        int ours = pair.getInt(0);
        int theirs = pair.getInt(4);
        ByteBuffer pipe = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        if (c.pipe2(Libc.address(pipe), Libc.O_CLOEXEC) < 0) {
            int e = Libc.errno();
            Libc.close(ours);
            Libc.close(theirs);
            throw new NativeException("pipe2", e);
        }
        int errRead = pipe.getInt(0);
        int errWrite = pipe.getInt(4);
        ByteBuffer actions = ByteBuffer.allocateDirect(256).order(ByteOrder.nativeOrder()); // glibc's is 80 bytes
        ByteBuffer pid = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        Strings args = new Strings(argv);
        Strings envp = new Strings(env);
        int child;
        try {
            long fa = Libc.address(actions);
            c.posix_spawn_file_actions_init(fa);
            try {
                // two steps through a free number: dup2(x, x) would leave close-on-exec set
                c.posix_spawn_file_actions_adddup2(fa, theirs, 100);
                c.posix_spawn_file_actions_adddup2(fa, 100, CHILD_FD);
                c.posix_spawn_file_actions_adddup2(fa, errWrite, 2);
                c.posix_spawn_file_actions_addclosefrom_np(fa, CHILD_FD + 1);
                int r = c.posix_spawn(Libc.address(pid), argv.get(0), fa, 0, args.address(), envp.address());
                if (r != 0) {
                    throw new NativeException("posix_spawn " + argv.get(0), r);
                }
                child = pid.getInt(0);
            } finally {
                c.posix_spawn_file_actions_destroy(fa);
            }
        } finally {
            Libc.close(theirs);
            Libc.close(errWrite);
            java.lang.ref.Reference.reachabilityFence(args);
            java.lang.ref.Reference.reachabilityFence(envp);
        }
        try {
            // bound the wait for the descriptor: a helper that hangs must not hang us
            ByteBuffer tv = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
            tv.putLong(0, Math.max(1, timeoutMillis / 1000)).putLong(8, 0);
            c.setsockopt(ours, SOL_SOCKET, SO_RCVTIMEO, Libc.address(tv), 16);
            int fd = receiveFd(ours); // -1 at EOF (exited without sending) or when the time is up
            int exit = await(child, timeoutMillis);
            String err = readAll(errRead);
            return new Result(exit, err.trim(), fd);
        } finally {
            Libc.close(ours);
            Libc.close(errRead);
        }
    }

    /** One SCM_RIGHTS descriptor from {@code sock}, or -1 at EOF (the peer closed without sending). */
    private static int receiveFd(int sock) throws NativeException {
        ByteBuffer data = ByteBuffer.allocateDirect(8);
        ByteBuffer iov = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
        ByteBuffer control = ByteBuffer.allocateDirect(64).order(ByteOrder.nativeOrder());
        ByteBuffer msg = ByteBuffer.allocateDirect(56).order(ByteOrder.nativeOrder());
        iov.putLong(0, Libc.address(data)).putLong(8, 1);
        msg.putLong(16, Libc.address(iov)).putLong(24, 1); // msg_iov, msg_iovlen
        msg.putLong(32, Libc.address(control)).putLong(40, control.capacity()); // msg_control, msg_controllen
        long n;
        do {
            n = Libc.raw().recvmsg(sock, Libc.address(msg), MSG_CMSG_CLOEXEC);
        } while (n < 0 && Libc.errno() == Errno.EINTR);
        if (n < 0 && Libc.errno() == Errno.EAGAIN) {
            return -1; // timed out: the caller's bounded wait for the child kills it
        }
        if (n < 0) {
            throw new NativeException("recvmsg", Libc.errno());
        }
        long controlLength = msg.getLong(40);
        if (n == 0 || controlLength < 16 + 4) {
            return -1;
        }
        // struct cmsghdr: cmsg_len (8), cmsg_level (4), cmsg_type (4), then the data
        if (control.getInt(8) != SOL_SOCKET || control.getInt(12) != SCM_RIGHTS) {
            return -1;
        }
        return control.getInt(16);
    }

    /** Waits for the child, bounded; kills it when the time is up. Exit status, or -signal. */
    private static int await(int child, long timeoutMillis) throws NativeException {
        ByteBuffer status = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (true) {
            int r = Libc.raw().waitpid(child, Libc.address(status), WNOHANG);
            if (r == child) {
                int s = status.getInt(0);
                return (s & 0x7f) == 0 ? (s >> 8) & 0xff : -(s & 0x7f);
            }
            if (r < 0 && Libc.errno() != Errno.EINTR) {
                throw new NativeException("waitpid", Libc.errno());
            }
            if (System.nanoTime() > deadline) {
                Libc.raw().kill(child, SIGKILL);
                Libc.raw().waitpid(child, Libc.address(status), 0);
                return -SIGKILL;
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                Libc.raw().kill(child, SIGKILL);
                Libc.raw().waitpid(child, Libc.address(status), 0);
                return -SIGKILL;
            }
        }
    }

    private static String readAll(int fd) {
        ByteBuffer buf = ByteBuffer.allocateDirect(4096);
        StringBuilder sb = new StringBuilder();
        long n;
        while ((n = Libc.read(fd, Libc.address(buf), buf.capacity())) > 0 && sb.length() < 65536) {
            byte[] b = new byte[(int) n];
            buf.get(0, b);
            sb.append(new String(b, StandardCharsets.UTF_8));
        }
        return sb.toString();
    }

    /** A NULL-terminated char*[] over NUL-terminated strings, all in direct memory kept reachable here. */
    private static final class Strings {
        private final ByteBuffer text;
        private final ByteBuffer pointers;

        Strings(List<String> values) {
            byte[][] bytes = new byte[values.size()][];
            int total = 0;
            for (int i = 0; i < bytes.length; i++) {
                bytes[i] = values.get(i).getBytes(StandardCharsets.UTF_8);
                total += bytes[i].length + 1;
            }
            text = ByteBuffer.allocateDirect(Math.max(1, total));
            pointers = ByteBuffer.allocateDirect(8 * (bytes.length + 1)).order(ByteOrder.nativeOrder());
            long base = Libc.address(text);
            int at = 0;
            for (int i = 0; i < bytes.length; i++) {
                text.put(at, bytes[i]);
                text.put(at + bytes[i].length, (byte) 0);
                pointers.putLong(8 * i, base + at);
                at += bytes[i].length + 1;
            }
            pointers.putLong(8 * bytes.length, 0);
        }

        long address() {
            return Libc.address(pointers);
        }
    }
}
