package org.blockfuse.nbd.internal;

import java.io.IOException;

/** The server broke the protocol: its connection is dropped, nothing it sent is used. */
final class ProtocolException extends IOException {
    private static final long serialVersionUID = 1L;

    ProtocolException(String message) {
        super(message);
    }
}
