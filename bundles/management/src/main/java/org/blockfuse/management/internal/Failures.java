package org.blockfuse.management.internal;

/**
 * A remote JMX client has none of blockfuse's classes: an operation's failure crosses as a JDK
 * exception carrying the message (the one-line reason the shell would print).
 */
final class Failures {
    private Failures() {
    }

    static Exception portable(Exception e) {
        String message = e.getMessage() == null ? e.toString() : e.getMessage();
        return e instanceof IllegalArgumentException ? new IllegalArgumentException(message) : new IllegalStateException(message);
    }
}
