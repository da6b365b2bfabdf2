package org.blockfuse.fuse.internal;

import java.io.IOException;

import org.blockfuse.api.BlockBackend;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One backend shared by an export and each of its connections (during a transport fallback an old
 * connection drains while a new one serves). Closed when the last holder lets go; a holder whose
 * threads may still use the backend never lets go, so the image is leaked rather than closed under them.
 */
public final class SharedBackend {
    private static final Logger LOG = LoggerFactory.getLogger(SharedBackend.class);
    private final String name;
    private final BlockBackend backend;
    private int holders = 1;

    /** The caller is the first holder. */
    public SharedBackend(String name, BlockBackend backend) {
        this.name = name;
        this.backend = backend;
    }

    public BlockBackend backend() {
        return backend;
    }

    public synchronized SharedBackend retain() {
        if (holders == 0) {
            throw new IllegalStateException(name + ": the backend is already closed");
        }
        holders++;
        return this;
    }

    public synchronized int holders() {
        return holders;
    }

    /** Lets go; the last one closes the backend (flushing it). */
    public void release() {
        synchronized (this) {
            if (holders == 0) {
                throw new IllegalStateException(name + ": backend released more often than retained");
            }
            if (--holders > 0) {
                return;
            }
        }
        try {
            backend.close();
        } catch (IOException e) {
            LOG.error("{}: closing the image failed: {}", name, e.toString());
        }
    }
}
