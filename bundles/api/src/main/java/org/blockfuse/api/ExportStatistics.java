package org.blockfuse.api;

import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * What an export has served since {@code since} (its configuration, across restarts and
 * transport switches): counters are cumulative, {@code inFlight} is now. I/O of files opened with
 * FUSE passthrough goes to the image without reaching blockfuse and is not counted here.
 * @param byOpcode     requests per FUSE opcode name (only opcodes seen)
 * @param errors       replies with an error, per errno name (only errnos seen)
 * @param inFlight     requests being served now
 * @param peakInFlight the most served at once
 * @param latency      every request's latency, arrival to reply
 * @param queues       the queues of the transport serving the export now, empty when not active
 * @param enabled      false when the export's {@code statistics} key is off: only {@code requests} counts then
 */
public record ExportStatistics(String name, Instant since, boolean enabled, long requests, Map<String, Long> byOpcode,
        long reads, long bytesRead, long writes, long bytesWritten, Map<String, Long> errors, int inFlight,
        int peakInFlight, LatencyDistribution latency, long passthroughOpens, List<QueueStatistics> queues) {

    public long errorCount() {
        return errors.values().stream().mapToLong(Long::longValue).sum();
    }
}
