package org.blockfuse.fuse.internal;

import org.blockfuse.fuse.FuseAbi;

import java.nio.ByteBuffer;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.RequestHandler;
import org.blockfuse.nativeio.Errno;
import org.blockfuse.nativeio.Libc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * Serves requests read from one /dev/fuse fd until the connection ends: read one request,
 * let the handler answer in place, write one reply on the same fd (the kernel finds the
 * request only in the processing list of the fd it was read from).
 * Buffers are allocated once; nothing is allocated per request. Requests are read at an offset
 * that puts WRITE data on a page boundary, and replies go out with writev from a page-aligned
 * payload buffer, so O_DIRECT images need no bounce copies.
 */
public final class DeviceLoop implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceLoop.class);
    private static final int PAGE = 4096;
    /** WRITE data starts after the in header and fuse_write_in. */
    private static final int WRITE_DATA_OFFSET = FuseAbi.InHeader.SIZE + FuseAbi.WriteIn.SIZE;
    private static final int IOVEC_SIZE = 16;

    private final FuseChannel channel;
    private final int fd;
    private final ByteBuffer request;
    private final LegacyRequest views;
    private final long requestAddress;
    private final ByteBuffer header;
    private final ByteBuffer payload;
    private final ByteBuffer iov;
    private final long iovAddress;

    public DeviceLoop(FuseChannel channel, int fd) {
        this.channel = channel;
        this.fd = fd;
        ByteBuffer area = Libc.allocateAligned(channel.requestBufferSize() + PAGE, PAGE);
        this.request = area.position(PAGE - WRITE_DATA_OFFSET).slice().order(area.order());
        this.requestAddress = Libc.address(request);
        this.views = new LegacyRequest(request);
        this.header = Libc.allocateAligned(FuseAbi.OutHeader.SIZE, 64);
        this.payload = Libc.allocateAligned(channel.maxWrite(), PAGE);
        this.iov = Libc.allocateAligned(2 * IOVEC_SIZE, 64);
        this.iovAddress = Libc.address(iov);
        iov.putLong(0, Libc.address(header));
        iov.putLong(8, FuseAbi.OutHeader.SIZE);
        iov.putLong(IOVEC_SIZE, Libc.address(payload));
    }

    /**
     * The thread's body with its last-resort handler: anything unexpected (a handler bug, an
     * Error) halts this connection with the thread, the opcode and the cause, so a mount is
     * never left without a server.
     */
    @Override
    public void run() {
        MDC.put(ExportHandler.MDC_EXPORT, channel.name()); // every line of this thread names its export
        try {
            serve();
        } catch (Throwable t) { // last resort: the alternative is a mount nobody serves
            channel.halt(Thread.currentThread().getName() + " died serving " + currentOp() + ": " + t);
            if (t instanceof Error && !(t instanceof StackOverflowError) && !(t instanceof LinkageError)) {
                throw (Error) t;
            }
        }
    }

    private String currentOp() {
        try {
            return FuseAbi.Op.name(views.opcode()) + " (unique " + request.getLong(FuseAbi.InHeader.UNIQUE) + ")";
        } catch (RuntimeException e) {
            return "an unreadable request";
        }
    }

    private void serve() {
        RequestHandler handler = channel.handler();
        int capacity = channel.requestBufferSize();
        while (!channel.halted()) {
            long n = Libc.read(fd, requestAddress, capacity);
            if (n < 0) {
                int errno = (int) -n;
                if (errno == Errno.EINTR || errno == Errno.EAGAIN || errno == Errno.ENOENT) {
                    continue; // ENOENT: the request was interrupted before we got it
                }
                if (errno == Errno.ENODEV || errno == Errno.ECONNABORTED) {
                    // ENODEV: unmounted, ECONNABORTED: aborted; expected only when the export ends it
                    channel.ended(Errno.name(errno) + " on " + Thread.currentThread().getName());
                } else if (!channel.halted()) {
                    channel.halt("read from /dev/fuse failed: " + Libc.strerror(errno));
                }
                return;
            }
            String wrong = views.accept((int) n);
            if (wrong != null) {
                channel.halt(wrong); // a framing violation: halt, never guess
                return;
            }
            payload.clear();
            int result = handler.handle(views.header(), views.args(), views.payload(), payload);
            if (result == RequestHandler.NO_REPLY) {
                continue;
            }
            int data = Math.max(result, 0);
            int len = FuseAbi.OutHeader.SIZE + data;
            header.putInt(FuseAbi.OutHeader.LEN, len);
            header.putInt(FuseAbi.OutHeader.ERROR, Math.min(result, 0));
            header.putLong(FuseAbi.OutHeader.UNIQUE, request.getLong(FuseAbi.InHeader.UNIQUE));
            iov.putLong(IOVEC_SIZE + 8, data);
            long w = Libc.writev(fd, iovAddress, data > 0 ? 2 : 1);
            if (w < 0) {
                int errno = (int) -w;
                if (errno == Errno.ENODEV || errno == Errno.ECONNABORTED) {
                    channel.ended(Errno.name(errno) + " on " + Thread.currentThread().getName());
                    return;
                }
                if (errno != Errno.ENOENT) { // ENOENT: the caller was interrupted meanwhile
                    LOG.warn("{}: writing a reply failed: {}", channel.name(), Libc.strerror(errno));
                }
            }
        }
    }
}
