package org.blockfuse.legacy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.blockfuse.api.Availability;
import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.TransportSession;
import org.blockfuse.nativeio.Libc;
import org.blockfuse.nativeio.NativeException;
import org.osgi.service.component.annotations.Component;

/**
 * The /dev/fuse read/write transport: worker threads, each on its own cloned fd
 * (less contention on the kernel's per-fd processing list), each with buffers sized for max_write.
 */
@Component(service = FuseTransport.class, property = FuseTransport.NAME + "=" + LegacyTransport.NAME)
public final class LegacyTransport implements FuseTransport {
    public static final String NAME = "legacy";
    public static final int RANK = 10;
    /** _IOR(229, 0, uint32_t): join an fd to the connection of another. */
    static final long FUSE_DEV_IOC_CLONE = 0x8004E500L;

    private volatile Availability availability;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int rank() {
        return RANK;
    }

    @Override
    public Availability availability() {
        Availability a = availability;
        if (a == null) {
            a = probe();
            availability = a;
        }
        return a;
    }

    private static Availability probe() {
        try {
            Libc.close(Libc.open("/dev/fuse", Libc.O_RDWR, 0));
            return Availability.yes();
        } catch (NativeException e) {
            return Availability.no("/dev/fuse cannot be opened: " + e.getMessage());
        }
    }

    @Override
    public java.util.List<org.blockfuse.api.OptionSpec> options() {
        return java.util.List.of(org.blockfuse.api.OptionSpec.integer("workers", 0, 0, 256,
                "Legacy transport: threads reading /dev/fuse; 0 = one per CPU."));
    }

    @Override
    public TransportSession attach(FuseChannel channel) throws IOException {
        int workers = workerCount(channel);
        return LegacySession.start(channel, workers);
    }

    static int workerCount(FuseChannel channel) {
        String w = channel.options().get("workers");
        if (w == null || w.isBlank() || w.equals("0")) {
            return Runtime.getRuntime().availableProcessors();
        }
        return Integer.parseInt(w.trim());
    }

    /** Opens a new /dev/fuse fd attached to the connection of {@code fd}. */
    static int cloneFd(int fd) throws NativeException {
        int clone = Libc.open("/dev/fuse", Libc.O_RDWR, 0);
        ByteBuffer arg = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
        arg.putInt(0, fd);
        try {
            Libc.ioctl(clone, FUSE_DEV_IOC_CLONE, Libc.address(arg), "ioctl FUSE_DEV_IOC_CLONE");
        } catch (NativeException e) {
            Libc.close(clone);
            throw e;
        } finally {
            java.lang.ref.Reference.reachabilityFence(arg); // only its address went to the kernel
        }
        return clone;
    }
}
