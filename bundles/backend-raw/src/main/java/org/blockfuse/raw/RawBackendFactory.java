package org.blockfuse.raw;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackendFactory;
import org.blockfuse.api.ImageException;
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
    public BlockBackend open(BackendRequest request) throws IOException {
        Path image = request.image().toAbsolutePath().normalize();
        createIfAsked(image, request.option("create", ""));
        if (!Files.exists(image)) {
            throw new ImageException("image " + image + " does not exist");
        }
        if (Files.isDirectory(image)) {
            throw new ImageException("image " + image + " is a directory");
        }
        String cache = request.option("cache", "writeback");
        if (!cache.equals("none") && !cache.equals("writeback")) {
            throw new ImageException("cache must be 'none' or 'writeback', not '" + cache + "'");
        }
        int mode = request.writable() ? Libc.O_RDWR : Libc.O_RDONLY;
        int fd = openImage(image, mode, request.writable());
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
            RawBackend b = new RawBackend(image, fd, directFd, st.isBlockDevice(), request.writable());
            fd = -1;
            directFd = -1;
            return b;
        } finally {
            Libc.close(fd);
            Libc.close(directFd);
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

    private static void createIfAsked(Path image, String size) throws IOException {
        if (size.isEmpty() || Files.exists(image)) {
            return;
        }
        long bytes = SizeParser.parse(size);
        Files.createDirectories(image.getParent());
        int fd = Libc.open(image.toString(), Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL, 0600);
        try {
            Libc.ftruncate(fd, bytes);
        } finally {
            Libc.close(fd);
        }
    }
}
