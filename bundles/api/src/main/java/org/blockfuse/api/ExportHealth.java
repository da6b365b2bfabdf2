package org.blockfuse.api;

/**
 * One export's health at a glance.
 * @param ioErrorsLastMinute replies of EIO or ENOSPC in the last minute (sampled every few seconds)
 * @param restarts           automatic restarts in the current budget window
 * @param restartLimit       how many the window allows before the export stays failed
 */
public record ExportHealth(String name, String state, String detail, String transport, long ioErrorsLastMinute,
        int restarts, int restartLimit) {
}
