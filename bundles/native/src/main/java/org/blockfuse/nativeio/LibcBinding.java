package org.blockfuse.nativeio;

/**
 * The raw libc symbols. Pointers, sizes and ssize_t are bound as {@code long} (an int return would
 * truncate); buffers are passed as raw addresses of direct memory (no copies).
 * Public only because jnr-ffi generates its implementation; use {@link Libc}.
 */
public interface LibcBinding {
    int open(CharSequence path, int flags, int mode);

    int close(int fd);

    long read(int fd, long buf, long count);

    long write(int fd, long buf, long count);

    long writev(int fd, long iov, int iovcnt);

    long pread(int fd, long buf, long count, long offset);

    long pwrite(int fd, long buf, long count, long offset);

    int ioctl(int fd, long request, long arg);

    int mount(CharSequence source, CharSequence target, CharSequence fstype, long flags, CharSequence data);

    int umount2(CharSequence target, int flags);

    int fallocate(int fd, int mode, long offset, long len);

    int fdatasync(int fd);

    int fsync(int fd);

    int ftruncate(int fd, long length);

    long lseek(int fd, long offset, int whence);

    int fstat(int fd, long statbuf);

    long syscall(long number, long a1, long a2, long a3);

    long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    long mmap(long addr, long length, int prot, int flags, int fd, long offset);

    int munmap(long addr, long length);

    int getuid();

    int getgid();

    int geteuid();

    String strerror(int errnum);

    int sched_setaffinity(int pid, long cpusetsize, long mask);

    int sched_getcpu();

    int eventfd(int initval, int flags);

    int socketpair(int domain, int type, int protocol, long sv);

    int pipe2(long fds, int flags);

    long recvmsg(int sockfd, long msg, int flags);

    int posix_spawn(long pid, CharSequence path, long fileActions, long attr, long argv, long envp);

    int posix_spawn_file_actions_init(long fileActions);

    int posix_spawn_file_actions_adddup2(long fileActions, int fd, int newfd);

    int posix_spawn_file_actions_addclosefrom_np(long fileActions, int from);

    int posix_spawn_file_actions_destroy(long fileActions);

    int waitpid(int pid, long status, int options);

    int kill(int pid, int sig);

    int setsockopt(int sockfd, int level, int optname, long optval, int optlen);
}
