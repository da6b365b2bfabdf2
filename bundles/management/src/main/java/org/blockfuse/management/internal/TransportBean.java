package org.blockfuse.management.internal;

import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.api.TransportInfo;
import org.blockfuse.management.TransportMXBean;

/** One transport's MXBean: its availability and the queues of the exports it serves now. */
final class TransportBean implements TransportMXBean {
    private final ExportService service;
    private final String name;

    TransportBean(ExportService service, String name) {
        this.service = service;
        this.name = name;
    }

    private TransportInfo info() {
        return service.transports().stream().filter(t -> t.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalStateException("transport " + name + " is gone"));
    }

    /** Figures summed over the queues of every export served by this transport now. */
    private long[] queues() {
        long[] sum = new long[4]; // exports, served, busy, offloads
        for (ExportInfo e : service.list()) {
            boolean counted = false;
            // the connection's details carry the queues without the latency histogram's fold and copy
            for (QueueStatistics q : service.details(e.name()).map(d -> d.queues()).orElse(java.util.List.of())) {
                if (!q.transport().equals(name)) {
                    continue;
                }
                if (!counted) {
                    sum[0]++;
                    counted = true;
                }
                sum[1] += q.served();
                sum[2] += q.busy();
                sum[3] += q.offloads();
            }
        }
        return sum;
    }

    @Override
    public String getName() {
        return name;
    }

    @Override
    public int getRank() {
        return info().rank();
    }

    @Override
    public boolean isAvailable() {
        return info().available();
    }

    @Override
    public String getReason() {
        return info().reason();
    }

    @Override
    public int getExports() {
        return (int) queues()[0];
    }

    @Override
    public long getRequestsServed() {
        return queues()[1];
    }

    @Override
    public int getBusy() {
        return (int) queues()[2];
    }

    @Override
    public long getOffloads() {
        return queues()[3];
    }
}
