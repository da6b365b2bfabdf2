package org.blockfuse.qcow2.internal;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/** One image of a backing chain (qcow2 or raw), seen as guest bytes. Thread-safe. */
interface Layer extends Closeable {

    /** Guest size of this layer; the layer above reads zeros past it. */
    long size();

    /** Fills dst (position..limit) with the bytes at offset; the range lies inside {@link #size()}. */
    void read(long offset, ByteBuffer dst) throws IOException;

    /**
     * Allocation status of the run starting at offset, at most maxLength long, resolved through the layers
     * below: a positive result is the length of a data run, a negative one minus the length of a hole.
     * Packing both into one long keeps the extent scan allocation-free.
     */
    long status(long offset, long maxLength) throws IOException;
}
