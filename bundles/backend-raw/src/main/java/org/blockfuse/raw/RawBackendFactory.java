package org.blockfuse.raw;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackendFactory;
import org.blockfuse.api.ImageException;
import org.blockfuse.api.Sizes;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.NativeException;
import org.blockfuse.nativeio.Stat;
import org.osgi.service.component.annotations.Component;

/**
 * Opens raw images: regular files and block devices.
 * Options: {@code cache=none} opens the image with O_DIRECT (unaligned requests use a second,
 * buffered descriptor), {@code create=SIZE} creates a missing image as a sparse file of that size.
 */
@Component(service = BlockBackendFactory.class, property = BlockBackendFactory.FORMAT + "=" + RawBackendFactory.FORMAT_NAME)
public final class RawBackendFactory implements BlockBackendFactory {
    public static final String FORMAT_NAME = "raw";

    @Override
    public String format() {
        return FORMAT_NAME;
    }

    @Override
    public boolean supportsWrite() {
        return true;
    }

    @Override
    public java.util.List<org.blockfuse.api.OptionSpec> options() {
        return java.util.List.of(
                org.blockfuse.api.OptionSpec.choice("cache", "writeback",
                        "Host cache for raw images: writeback (page cache) or none (O_DIRECT).", "writeback", "none"),
                org.blockfuse.api.OptionSpec.size("create", "",
                        "Create a missing raw image as a sparse file of this size (e.g. 1G)."));
    }

    @Override
    public BlockBackend open(BackendRequest request) throws IOException {
        Path image = request.imagePath().toAbsolutePath().normalize();
        // options first: a bad value is refused before anything is created, and even when the image exists
        String cache = request.option("cache", "writeback");
        if (!cache.equals("none") && !cache.equals("writeback")) {
            throw new ImageException("cache must be 'none' or 'writeback', not '" + cache + "'");
        }
        String create = request.option("create", "");
        long createSize = create.isEmpty() ? 0 : Sizes.parse(create);
        Created created = createSize > 0 && !Files.exists(image) ? create(image, create, createSize) : null;
        try {
            return openExisting(image, cache, request.writable());
        } catch (IOException | RuntimeException e) {
            if (created != null) {
                created.remove(); // a refused request leaves nothing behind
            }
            throw e;
        }
    }

    private static BlockBackend openExisting(Path image, String cache, boolean writable) throws IOException {
        if (!Files.exists(image)) {
            throw new ImageException("image " + image + " does not exist");
        }
        Stat type = inspect(image);
        if (type.isDirectory()) {
            throw new ImageException("image " + image + " is a directory");
        }
        if (!type.isRegular() && !type.isBlockDevice()) { // before open(2): a FIFO would block it until a writer comes
            throw new ImageException("image " + image + " is neither a regular file nor a block device");
        }
        int mode = writable ? Libc.O_RDWR : Libc.O_RDONLY;
        int fd = openImage(image, mode, writable);
        int directFd = -1;
        try {
            Stat st = Libc.fstat(fd);
            if (!st.isRegular() && !st.isBlockDevice()) {
                throw new ImageException("image " + image + " is neither a regular file nor a block device");
            }
            if (cache.equals("none")) {
                try {
                    directFd = Libc.open(image.toString(), mode | Libc.O_DIRECT, 0);
                } catch (NativeException e) {
                    throw new ImageException("image " + image + " cannot be opened with O_DIRECT (cache=none): "
                            + Libc.strerror(e.errno()), e);
                }
            }
            RawBackend b = new RawBackend(image, fd, directFd, st.isBlockDevice(), writable);
            fd = -1;
            directFd = -1;
            return b;
        } finally {
            Libc.close(fd);
            Libc.close(directFd);
        }
    }

    /** The type of what the path names, through an O_PATH descriptor (which opens even a FIFO at once). */
    private static Stat inspect(Path image) throws ImageException {
        int fd;
        try {
            fd = Libc.open(image.toString(), Libc.O_PATH, 0);
        } catch (NativeException e) {
            throw new ImageException("image " + image + " cannot be opened: " + Libc.strerror(e.errno()), e);
        }
        try {
            return Libc.fstat(fd);
        } catch (NativeException e) {
            throw new ImageException("image " + image + " cannot be inspected: " + Libc.strerror(e.errno()), e);
        } finally {
            Libc.close(fd);
        }
    }

    private static int openImage(Path image, int mode, boolean writable) throws ImageException {
        try {
            return Libc.open(image.toString(), mode, 0);
        } catch (NativeException e) {
            if (writable && (e.errno() == Errno.EACCES || e.errno() == Errno.EROFS || e.errno() == Errno.EPERM)) {
                throw new ImageException("image " + image + " cannot be opened for writing ("
                        + Libc.strerror(e.errno()) + "); export it without --writable", e);
            }
            throw new ImageException("image " + image + " cannot be opened: " + Libc.strerror(e.errno()), e);
        }
    }

    /** What {@link #create} made: the file and the first folder it had to make (or null). */
    private record Created(Path file, Path firstNewFolder) {
        void remove() {
            try {
                Files.deleteIfExists(file);
                for (Path p = file.getParent(); firstNewFolder != null && p != null && p.startsWith(firstNewFolder);
                        p = p.getParent()) {
                    Files.deleteIfExists(p);
                }
            } catch (IOException e) {
                // best effort: the refusal that brought us here is what the operator needs to see
            }
        }
    }

    /** Creates a missing image as a sparse file of {@code bytes} (and the folders above it, as for the demo). */
    private static Created create(Path image, String size, long bytes) throws ImageException {
        Path firstNew = null;
        for (Path p = image.getParent(); p != null && !Files.exists(p); p = p.getParent()) {
            firstNew = p;
        }
        Created created = new Created(image, firstNew);
        try {
            Files.createDirectories(image.getParent());
        } catch (IOException e) {
            created.remove();
            throw new ImageException("image " + image + " cannot be created: " + reason(e), e);
        }
        int fd;
        try {
            fd = Libc.open(image.toString(), Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL, 0600);
        } catch (NativeException e) {
            created.remove();
            throw new ImageException("image " + image + " cannot be created: " + Libc.strerror(e.errno()), e);
        }
        try {
            Libc.ftruncate(fd, bytes);
        } catch (NativeException e) { // e.g. EFBIG: larger than the filesystem's largest file
            Libc.close(fd);
            created.remove();
            throw new ImageException("image " + image + " cannot be created with size " + size.trim() + ": "
                    + Libc.strerror(e.errno()), e);
        }
        Libc.close(fd);
        return created;
    }

    private static String reason(IOException e) {
        if (e instanceof FileAlreadyExistsException f) {
            return f.getFile() + " is in the way and is not a folder";
        }
        if (e instanceof AccessDeniedException f) {
            return "permission denied at " + f.getFile();
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getFile() + ": " + f.getReason();
        }
        return e.toString();
    }
}
