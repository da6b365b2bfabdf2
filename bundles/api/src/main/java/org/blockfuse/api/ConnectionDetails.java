package org.blockfuse.api;

import java.util.List;

/**
 * What the kernel and blockfuse agreed for the connection serving an export now.
 * @param connection   fusectl's connection number (the mount's minor device number)
 * @param minor        the negotiated FUSE protocol minor (7.minor)
 * @param flags        INIT flags both sides agreed, by name
 * @param layout       the transport's layout, e.g. "2 queues x 16"
 * @param passthrough  "on (backing id N)" or "off: why"
 * @param draining     earlier connections still serving files opened before a switch
 * @param queues       the serving transport's queues now
 */
public record ConnectionDetails(int connection, int minor, int maxWrite, int maxPages, List<String> flags,
        String transport, String layout, String passthrough, int draining, int openFiles, int waiting,
        List<QueueStatistics> queues) {
}
