package org.blockfuse.api;

import java.io.IOException;

/** An image cannot be opened or used; the message is a complete sentence for the operator. */
public class ImageException extends IOException {
    private static final long serialVersionUID = 1L;

    public ImageException(String message) {
        super(message);
    }

    public ImageException(String message, Throwable cause) {
        super(message, cause);
    }
}
