package org.blockfuse.management;

import java.util.Map;

/**
 * One export, {@code org.blockfuse:type=export,name=NAME}. Attributes are read-only figures
 * (Karaf's JMX ACL lets viewers read them); operations change the export and need admin
 * ({@code etc/jmx.acl.org.blockfuse.cfg}). Latencies in microseconds, from a request's arrival
 * at blockfuse to its reply; counters since the export was configured.
 */
public interface ExportMXBean {
    String getName();

    String getState();

    /** Why it failed or waits; empty when active. */
    String getDetail();

    String getTransport();

    String getImage();

    String getMountpoint();

    String getFormat();

    long getVirtualSize();

    boolean isWritable();

    boolean isStatisticsEnabled();

    long getRequests();

    Map<String, Long> getRequestsByOpcode();

    long getReads();

    long getBytesRead();

    long getWrites();

    long getBytesWritten();

    long getErrors();

    Map<String, Long> getErrorsByErrno();

    long getIoErrorsLastMinute();

    int getRestarts();

    int getInFlight();

    int getPeakInFlight();

    long getLatencyP50Micros();

    long getLatencyP90Micros();

    long getLatencyP99Micros();

    long getLatencyP999Micros();

    long getLatencyMaxMicros();

    long getPassthroughOpens();

    /** The FUSE protocol minor negotiated with the kernel (7.minor); 0 when not active. */
    int getProtocolMinor();

    int getMaxWrite();

    String getPassthrough();

    /** Stops the export and starts it again from its configuration (new connection). */
    void restart() throws Exception;

    /** Deletes the export's configuration and unmounts it. */
    void remove() throws Exception;

    /** Moves the export to another transport ("legacy" or "io_uring"); returns what was done. */
    String switchTransport(String transport) throws Exception;
}
