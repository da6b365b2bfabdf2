package org.blockfuse.raw;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.NativeException;

/**
 * A raw image: guest offset = host offset. Positional I/O straight between the caller's direct
 * buffers and the file; flush = fdatasync; discard = punch hole; write-zeroes = zero range.
 */
final class RawBackend implements BlockBackend {
    /** ioctl BLKGETSIZE64 = _IOR(0x12, 114, size_t). */
    private static final long BLKGETSIZE64 = 0x80081272L;
    private static final int DIRECT_ALIGNMENT = 4096;
    private static final int ZERO_CHUNK = 1 << 20;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(ZERO_CHUNK);

    private final Path image;
    private final int fd;
    /** O_DIRECT descriptor (cache=none) or -1; unaligned requests use {@link #fd}. */
    private final int directFd;
    private final boolean blockDevice;
    private final boolean writable;
    private volatile long size;
    private volatile boolean closed;
    /** Set once the kernel may write the file directly (FUSE passthrough): the size then comes from fstat. */
    private volatile boolean passedThrough;

    RawBackend(Path image, int fd, int directFd, boolean blockDevice, boolean writable) throws IOException {
        this.image = image;
        this.fd = fd;
        this.directFd = directFd;
        this.blockDevice = blockDevice;
        this.writable = writable;
        this.size = blockDevice ? deviceSize(fd) : Libc.fstat(fd).size();
    }

    private static long deviceSize(int fd) throws NativeException {
        ByteBuffer out = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
        Libc.ioctl(fd, BLKGETSIZE64, Libc.address(out), "ioctl BLKGETSIZE64");
        return out.getLong(0);
    }

    @Override
    public long size() {
        if (passedThrough && !blockDevice) {
            try {
                return Libc.fstat(fd).size();
            } catch (NativeException e) {
                return size; // fstat of an open fd does not fail; keep the last known size if it does
            }
        }
        return size;
    }

    @Override
    public int passthroughFd() {
        passedThrough = true;
        return fd;
    }

    @Override
    public boolean supportsPassthrough() {
        return true;
    }

    @Override
    public boolean blockDevice() {
        return blockDevice;
    }

    @Override
    public boolean writable() {
        return writable;
    }

    @Override
    public long allocatedBytes() throws IOException {
        return blockDevice ? size : Libc.fstat(fd).blocks() * 512;
    }

    /** The descriptor for one request: the O_DIRECT one only when address, offset and length are all aligned. */
    int fdFor(long address, long offset, long length) { // package-private for the tests
        if (directFd >= 0 && ((address | offset | length) & (DIRECT_ALIGNMENT - 1)) == 0) {
            return directFd;
        }
        return fd;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        long address = Libc.address(dst) + dst.position();
        long want = dst.remaining();
        int which = fdFor(address, offset, want);
        long done = 0;
        while (done < want) {
            long n = Libc.pread(which, address + done, want - done, offset + done);
            if (n < 0) {
                if (n == -Errno.EINTR) {
                    continue;
                }
                throw new NativeException("pread " + image + " at " + (offset + done), (int) -n);
            }
            if (n == 0) { // past the end of the file: a raw image reads zeros there
                for (long i = done; i < want; i++) {
                    dst.put(dst.position() + (int) i, (byte) 0);
                }
                break;
            }
            done += n;
        }
        dst.position(dst.limit());
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        checkWritable();
        long address = Libc.address(src) + src.position();
        long want = src.remaining();
        int which = fdFor(address, offset, want);
        long done = 0;
        while (done < want) {
            long n = Libc.pwrite(which, address + done, want - done, offset + done);
            if (n < 0) {
                if (n == -Errno.EINTR) {
                    continue;
                }
                throw new NativeException("pwrite " + image + " at " + (offset + done), (int) -n);
            }
            done += n;
        }
        src.position(src.limit());
        if (offset + want > size) {
            grewTo(offset + want);
        }
    }

    private synchronized void grewTo(long end) {
        if (end > size) {
            size = end;
        }
    }

    @Override
    public void flush() throws IOException {
        if (writable) {
            Libc.fdatasync(fd);
        }
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        checkWritable();
        zeroRange(Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offset, length, "punch hole in ");
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        checkWritable();
        zeroRange(Libc.FALLOC_FL_ZERO_RANGE | Libc.FALLOC_FL_KEEP_SIZE, offset, length, "zero range in ");
    }

    /**
     * fallocate(mode) over the range; where the host cannot (EOPNOTSUPP) zeros are written instead, which keeps
     * the read-back promise. A block device takes fallocate only in whole logical blocks (EINVAL otherwise), so
     * there the unaligned head and tail are written as zeros and only the aligned middle goes to fallocate
     * (4096 is a multiple of every logical block size up to the page size).
     */
    private void zeroRange(int mode, long offset, long length, String what) throws IOException {
        long start = offset;
        long end = offset + length;
        if (blockDevice) {
            long mask = DIRECT_ALIGNMENT - 1;
            start = (offset + mask) & ~mask;
            end = (offset + length) & ~mask;
            if (start >= end) {
                writeZeroBytes(offset, length);
                return;
            }
            writeZeroBytes(offset, start - offset);
            writeZeroBytes(end, offset + length - end);
        }
        int r = Libc.fallocate(fd, mode, start, end - start);
        if (r == -Errno.EOPNOTSUPP) {
            writeZeroBytes(start, end - start);
        } else if (r < 0) {
            throw new NativeException(what + image, -r);
        }
    }

    private void writeZeroBytes(long offset, long length) throws IOException {
        long done = 0;
        while (done < length) {
            int n = (int) Math.min(ZERO_CHUNK, length - done);
            write(offset + done, ZEROS.duplicate().limit(n));
            done += n;
        }
    }

    @Override
    public void allocate(long offset, long length) throws IOException {
        checkWritable();
        if (blockDevice) {
            return; // a block device is allocated by nature
        }
        int r = Libc.fallocate(fd, Libc.FALLOC_FL_KEEP_SIZE, offset, length);
        if (r < 0 && r != -Errno.EOPNOTSUPP) { // allocation is a hint where the host has no fallocate
            throw new NativeException("fallocate " + image, -r);
        }
    }

    @Override
    public synchronized void resize(long newSize) throws IOException {
        checkWritable();
        if (blockDevice) {
            throw new ImageException("image " + image + " is a block device and cannot be resized");
        }
        Libc.ftruncate(fd, newSize);
        size = newSize;
    }

    @Override
    public Extent extentAt(long offset) throws IOException {
        long end = size();
        if (offset >= end) {
            return new Extent(offset, 0, false);
        }
        if (blockDevice) {
            return new Extent(offset, end - offset, true);
        }
        long data = Libc.lseek(fd, offset, Libc.SEEK_DATA);
        if (data == -Errno.ENXIO) {
            return new Extent(offset, end - offset, false);
        }
        if (data < 0) {
            if (data == -Errno.EINVAL || data == -Errno.EOPNOTSUPP) {
                return new Extent(offset, end - offset, true); // no SEEK_DATA here: all data
            }
            throw new NativeException("lseek SEEK_DATA in " + image, (int) -data);
        }
        if (data > offset) {
            return new Extent(offset, Math.min(data, end) - offset, false);
        }
        long hole = Libc.lseek(fd, offset, Libc.SEEK_HOLE);
        if (hole < 0) {
            throw new NativeException("lseek SEEK_HOLE in " + image, (int) -hole);
        }
        return new Extent(offset, Math.min(Math.max(hole, offset + 1), end) - offset, true);
    }

    @Override
    public int directFd() {
        return directFd >= 0 ? directFd : fd;
    }

    @Override
    public int directAlignment() {
        return directFd >= 0 ? DIRECT_ALIGNMENT : 1;
    }

    private void checkWritable() throws ImageException {
        if (!writable) {
            throw new ImageException("image " + image + " is open read-only");
        }
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            flush();
        } finally {
            Libc.close(fd);
            Libc.close(directFd);
        }
    }
}
