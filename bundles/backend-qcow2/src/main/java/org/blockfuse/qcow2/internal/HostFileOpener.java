package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import org.blockfuse.api.ImageException;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.NativeException;
import org.blockfuse.nativeio.Stat;

/**
 * Opens the files of a chain so that a hostile image cannot make us read, or hang on, anything but a regular
 * file or a block device. The name is first opened with O_PATH, which neither runs a device driver's open
 * nor waits for a FIFO's writer; that descriptor is fstat-ed and its real path read back from /proc/self/fd,
 * and only then is the file reopened for reading through the same descriptor. Every check therefore applies
 * to exactly the file that is read: there is no separate stat that a rename could race.
 */
final class HostFileOpener {

    /** Explains a refusal; the caller turns the reason into a message naming the image and the file. */
    interface Refusal {
        ImageException refuse(String reason);
    }

    /** Device and inode: the identity of an open file, for loop detection. */
    record FileId(long dev, long ino) {
    }

    record Opened(ImageFile file, FileId id) {
    }

    // st_mode file types (<sys/stat.h>) that Stat does not name.
    private static final int S_IFIFO = 0010000;
    private static final int S_IFCHR = 0020000;
    private static final int S_IFSOCK = 0140000;
    private static final String FD_DIR = "/proc/self/fd/";
    /** Kernel pseudo file systems: their "regular" files are generated (process environment, tunables). */
    private static final List<Path> PSEUDO_ROOTS = List.of(Path.of("/proc"), Path.of("/sys"));
    private static final Set<Long> PSEUDO_DEVICES = pseudoDevices();

    private HostFileOpener() {
    }

    /** Opens path read-only; throws NoSuchFileException when nothing is there, refusal for a wrong kind. */
    static Opened open(Path path, Refusal refusal) throws IOException {
        int fd;
        try {
            fd = Libc.open(path.toString(), Libc.O_PATH, 0);
        } catch (NativeException e) {
            if (e.errno() == Errno.ENOENT || e.errno() == Errno.ENOTDIR) {
                throw new NoSuchFileException(path.toString());
            }
            throw refusal.refuse("cannot be opened (" + e.getMessage() + ")");
        }
        try {
            Stat st = Libc.fstat(fd);
            Path real = Files.readSymbolicLink(Path.of(FD_DIR + fd));
            String kind = unacceptableKind(st);
            if (kind != null) {
                throw refusal.refuse("is " + kind + ", not a regular file or block device");
            }
            if (PSEUDO_DEVICES.contains(st.dev()) || PSEUDO_ROOTS.stream().anyMatch(real::startsWith)) {
                throw refusal.refuse("lies in a kernel pseudo file system (" + real + ")");
            }
            FileChannel channel = FileChannel.open(Path.of(FD_DIR + fd), StandardOpenOption.READ);
            return new Opened(ImageFile.adopt(path, real, channel), new FileId(st.dev(), st.ino()));
        } finally {
            Libc.close(fd);
        }
    }

    /** Null for a regular file or block device, else what the file is. */
    private static String unacceptableKind(Stat st) {
        if (st.isRegular() || st.isBlockDevice()) {
            return null;
        }
        int type = st.mode() & Stat.S_IFMT;
        return switch (type) {
            case S_IFIFO -> "a FIFO";
            case S_IFCHR -> "a character device";
            case S_IFSOCK -> "a socket";
            case Stat.S_IFDIR -> "a directory";
            default -> "of file type 0" + Integer.toOctalString(type);
        };
    }

    private static Set<Long> pseudoDevices() {
        return PSEUDO_ROOTS.stream().filter(Files::isDirectory).map(root -> {
            try {
                return (Long) Files.getAttribute(root, "unix:dev");
            } catch (IOException | UnsupportedOperationException e) {
                return null; // then the real-path test alone guards this root
            }
        }).filter(d -> d != null).collect(Collectors.toUnmodifiableSet());
    }
}
