package org.blockfuse.nbd.internal;

/**
 * What the server said about its export in the handshake.
 * @param flags          transmission flags (NbdWire.TF_*)
 * @param minBlock       offsets and lengths must be multiples of this (1 when the server set none)
 * @param maxPayload     the largest READ or WRITE payload the server accepts
 * @param structured     structured replies were negotiated (needed for block status)
 * @param allocationContext the base:allocation context id, or -1 when the server has none
 */
record ExportFacts(long size, int flags, int minBlock, int preferredBlock, int maxPayload, boolean structured,
        int allocationContext) {

    boolean has(int flag) {
        return (flags & flag) != 0;
    }

    boolean readOnly() {
        return has(NbdWire.TF_READ_ONLY);
    }

    /**
     * Whether a reconnection reached the same export: the same size and flags. Requests in flight
     * are only sent again to an export that passes this.
     */
    boolean sameExport(ExportFacts other) {
        return size == other.size && flags == other.flags && minBlock == other.minBlock;
    }

    String describe() {
        return size + " bytes, flags " + NbdWire.flags(flags) + ", block sizes " + minBlock + "/" + preferredBlock
                + "/" + maxPayload + (allocationContext >= 0 ? ", base:allocation" : "");
    }
}
