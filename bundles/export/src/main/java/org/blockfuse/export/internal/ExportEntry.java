package org.blockfuse.export.internal;

import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.fuse.FuseExport;

/** One configured export and what became of it; changed only on the manager's worker thread. */
final class ExportEntry {
    static final String STARTING = "starting";
    static final String ACTIVE = "active";
    static final String FAILED = "failed";
    static final String WAITING = "waiting";

    final String pid;
    final ExportSpec spec;
    volatile String state = STARTING;
    volatile String detail = "";
    volatile FuseExport live;
    volatile String transport = "";
    /** When automatic restarts happened (nanoTime), for the limit; worker thread only. */
    final java.util.ArrayDeque<Long> restarts = new java.util.ArrayDeque<>();
    /** Bumped by every start and stop: a restart scheduled before either is stale and does nothing. */
    long epoch;

    ExportEntry(String pid, ExportSpec spec) {
        this.pid = pid;
        this.spec = spec;
    }

    ExportInfo info() {
        FuseExport l = live;
        long size = l == null ? -1 : l.backend().size();
        String t = l == null ? transport : transport + " (" + l.session().describe() + ")";
        return new ExportInfo(spec.name(), spec.image(), spec.format(), size, spec.mountpoint(), t,
                spec.writable(), spec.growable(), state, detail);
    }
}
