package org.blockfuse.api;

/** Whether a capability can be used here, and if not, why. */
public record Availability(boolean available, String reason) {
    private static final Availability YES = new Availability(true, "");

    public static Availability yes() {
        return YES;
    }

    public static Availability no(String reason) {
        return new Availability(false, reason);
    }
}
