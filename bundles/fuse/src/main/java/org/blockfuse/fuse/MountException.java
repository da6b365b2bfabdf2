package org.blockfuse.fuse;

import java.io.IOException;

/** Mounting cannot proceed; the message is one line for the operator. */
public class MountException extends IOException {
    private static final long serialVersionUID = 1L;

    public MountException(String message) {
        super(message);
    }

    public MountException(String message, Throwable cause) {
        super(message, cause);
    }
}
