package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns bad metadata met while serving into an IOException (EIO for FUSE) and logs each distinct problem
 * once; a guest retrying a bad sector must not flood the log. The memory of what was logged is bounded.
 */
final class ReadFailureLog {

    private static final Logger LOG = LoggerFactory.getLogger(ReadFailureLog.class);
    private static final int MAX_REMEMBERED = 1024;

    private final String image;
    private final Set<String> logged = ConcurrentHashMap.newKeySet();

    ReadFailureLog(String image) {
        this.image = Qcow2Header.shown(image); // a backing file's name comes from the image above it
    }

    IOException failure(String problem, long guestOffset, long hostOffset, Throwable cause) {
        String message = image + ": " + problem + " at guest offset " + guestOffset
                + " (host offset " + hostOffset + ")";
        if (logged.size() < MAX_REMEMBERED && logged.add(problem + '@' + hostOffset)) {
            LOG.warn("qcow2 read failed: {}", message);
        }
        return cause == null ? new IOException(message) : new IOException(message, cause);
    }
}
