package org.blockfuse.uring;

import java.io.IOException;

import org.blockfuse.api.Availability;
import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.TransportSession;
import org.blockfuse.uring.internal.UringConfig;
import org.blockfuse.uring.internal.UringProbe;
import org.blockfuse.uring.internal.UringSession;
import org.osgi.service.component.annotations.Component;

/**
 * FUSE over io_uring (Linux 6.14+): one ring per possible CPU, requests arrive in per-entry buffers
 * and replies go back with COMMIT_AND_FETCH. Attaches to a connection that is already served over
 * /dev/fuse (INIT answered without FUSE_OVER_IO_URING); the kernel moves traffic to the rings as
 * soon as every queue has an entry. One-way: a connection cannot go back to /dev/fuse.
 */
@Component(service = FuseTransport.class, property = FuseTransport.NAME + "=" + UringTransport.NAME)
public final class UringTransport implements FuseTransport {
    public static final String NAME = "io_uring";
    static final int RANK = 20;

    private volatile Availability availability;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int rank() {
        return RANK;
    }

    /** Rings registered on a connection served over /dev/fuse take its traffic live (measured). */
    @Override
    public boolean joinsLiveConnections() {
        return true;
    }

    @Override
    public Availability availability() {
        Availability a = availability;
        if (a == null) {
            synchronized (this) {
                a = availability;
                if (a == null) {
                    a = UringProbe.probe();
                    availability = a;
                }
            }
        }
        return a;
    }

    @Override
    public java.util.List<org.blockfuse.api.OptionSpec> options() {
        return UringConfig.SPECS;
    }

    @Override
    public TransportSession attach(FuseChannel channel) throws IOException {
        Availability a = availability();
        if (!a.available()) {
            throw new IOException("io_uring transport unavailable: " + a.reason());
        }
        return UringSession.attach(channel, UringConfig.of(channel));
    }
}
