package org.blockfuse.management.internal;

import java.util.Map;
import java.util.Optional;

import org.blockfuse.api.ConnectionDetails;
import org.blockfuse.api.ExportHealth;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.ExportStatistics;
import org.blockfuse.management.ExportMXBean;

/** One export's MXBean: every getter asks the export service now, so figures are never stale. */
final class ExportBean implements ExportMXBean {
    private final ExportService service;
    private final String name;

    ExportBean(ExportService service, String name) {
        this.service = service;
        this.name = name;
    }

    private ExportInfo info() {
        return service.get(name).orElseThrow(() -> new IllegalStateException("export " + name + " is gone"));
    }

    private ExportStatistics stats() {
        return service.statistics(name).orElseThrow(() -> new IllegalStateException("export " + name + " is gone"));
    }

    private Optional<ConnectionDetails> details() {
        return service.details(name);
    }

    private Optional<ExportHealth> health() {
        return service.health().stream().filter(h -> h.name().equals(name)).findFirst();
    }

    @Override
    public String getName() {
        return name;
    }

    @Override
    public String getState() {
        return info().state();
    }

    @Override
    public String getDetail() {
        return info().detail();
    }

    @Override
    public String getTransport() {
        return info().transport();
    }

    @Override
    public String getImage() {
        return info().image().toString();
    }

    @Override
    public String getMountpoint() {
        return info().mountpoint().toString();
    }

    @Override
    public String getFormat() {
        return info().format();
    }

    @Override
    public long getVirtualSize() {
        return info().virtualSize();
    }

    @Override
    public boolean isWritable() {
        return info().writable();
    }

    @Override
    public boolean isStatisticsEnabled() {
        return stats().enabled();
    }

    @Override
    public long getRequests() {
        return stats().requests();
    }

    @Override
    public Map<String, Long> getRequestsByOpcode() {
        return stats().byOpcode();
    }

    @Override
    public long getReads() {
        return stats().reads();
    }

    @Override
    public long getBytesRead() {
        return stats().bytesRead();
    }

    @Override
    public long getWrites() {
        return stats().writes();
    }

    @Override
    public long getBytesWritten() {
        return stats().bytesWritten();
    }

    @Override
    public long getErrors() {
        return stats().errorCount();
    }

    @Override
    public Map<String, Long> getErrorsByErrno() {
        return stats().errors();
    }

    @Override
    public long getIoErrorsLastMinute() {
        return health().map(ExportHealth::ioErrorsLastMinute).orElse(0L);
    }

    @Override
    public int getRestarts() {
        return health().map(ExportHealth::restarts).orElse(0);
    }

    @Override
    public int getInFlight() {
        return stats().inFlight();
    }

    @Override
    public int getPeakInFlight() {
        return stats().peakInFlight();
    }

    @Override
    public long getLatencyP50Micros() {
        return stats().latency().valueAtPercentile(50) / 1000;
    }

    @Override
    public long getLatencyP90Micros() {
        return stats().latency().valueAtPercentile(90) / 1000;
    }

    @Override
    public long getLatencyP99Micros() {
        return stats().latency().valueAtPercentile(99) / 1000;
    }

    @Override
    public long getLatencyP999Micros() {
        return stats().latency().valueAtPercentile(99.9) / 1000;
    }

    @Override
    public long getLatencyMaxMicros() {
        return stats().latency().max() / 1000;
    }

    @Override
    public long getPassthroughOpens() {
        return stats().passthroughOpens();
    }

    @Override
    public int getProtocolMinor() {
        return details().map(ConnectionDetails::minor).orElse(0);
    }

    @Override
    public int getMaxWrite() {
        return details().map(ConnectionDetails::maxWrite).orElse(0);
    }

    @Override
    public String getPassthrough() {
        return details().map(ConnectionDetails::passthrough).orElse("");
    }

    @Override
    public void restart() throws Exception {
        try {
            service.restart(name);
        } catch (Exception e) {
            throw Failures.portable(e);
        }
    }

    @Override
    public void remove() throws Exception {
        try {
            service.remove(name);
        } catch (Exception e) {
            throw Failures.portable(e);
        }
    }

    @Override
    public String switchTransport(String transport) throws Exception {
        try {
            return service.switchTransport(name, transport);
        } catch (Exception e) {
            throw Failures.portable(e);
        }
    }
}
