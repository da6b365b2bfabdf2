package org.blockfuse.qcow2.internal;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** One host file opened read-only; positional reads only, so it is safe to share between threads. */
final class ImageFile implements Closeable {

    private final Path path;
    private final Path realPath;
    private final FileChannel channel;
    private final long length;

    private ImageFile(Path path, Path realPath, FileChannel channel, long length) {
        this.path = path;
        this.realPath = realPath;
        this.channel = channel;
        this.length = length;
    }

    /** Opens a file the caller trusts (no checks); chain files go through {@link HostFileOpener}. */
    static ImageFile open(Path path) throws IOException {
        return adopt(path, path, FileChannel.open(path, StandardOpenOption.READ));
    }

    /** Wraps a channel already opened on path; realPath is where the kernel says the file lives. */
    static ImageFile adopt(Path path, Path realPath, FileChannel channel) throws IOException {
        try {
            return new ImageFile(path, realPath, channel, channel.size());
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** The path as named (for messages and for resolving relative names next to it). */
    Path path() {
        return path;
    }

    /** The real path of the opened file, symlinks resolved. */
    Path realPath() {
        return realPath;
    }

    /** File length when opened; the image is read-only for us, so the tables are validated against this. */
    long length() {
        return length;
    }

    /** Fills dst from position to limit with the bytes at pos, or throws EOFException. */
    void readFully(long pos, ByteBuffer dst) throws IOException {
        long at = pos;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, at);
            if (n < 0) {
                throw new EOFException(path + ": unexpected end of file at " + at);
            }
            at += n;
        }
    }

    /** Reads as much of [pos, pos + dst.remaining()) as the file holds; returns the byte count. */
    int readUpTo(long pos, ByteBuffer dst) throws IOException {
        int start = dst.position();
        long at = pos;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, at);
            if (n < 0) {
                break;
            }
            at += n;
        }
        return dst.position() - start;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
