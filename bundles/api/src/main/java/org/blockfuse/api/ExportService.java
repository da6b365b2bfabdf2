package org.blockfuse.api;

import java.util.List;
import java.util.Optional;

/** Owns every export. Configuration (factory PID {@link #FACTORY_PID}) is the source of truth. */
public interface ExportService {

    String FACTORY_PID = "org.blockfuse.export";

    /**
     * Validates the spec, persists it as a configuration and waits until it is mounted.
     * On any failure nothing is left behind (no configuration, no mount, no created file).
     */
    ExportInfo add(ExportSpec spec) throws ExportException;

    /** Deletes the export's configuration and waits until it is unmounted. */
    void remove(String name) throws ExportException;

    /**
     * Stops an export (draining its clients like a removal) and starts it again from its
     * configuration, on a new connection; resets its automatic-restart budget.
     * @return the export once it is active again
     */
    ExportInfo restart(String name) throws ExportException;

    List<ExportInfo> list();

    /**
     * The export's recent state changes, oldest first, one line each: when, from, to, why
     * (starts, failures, automatic restarts, transports going away). Empty for an unknown name.
     */
    default List<String> history(String name) {
        return List.of();
    }

    /**
     * Moves a live export to another transport: on its live connection where the kernel allows
     * (legacy to io_uring), else on a new connection at the same path while the old one drains the
     * files already open (io_uring to legacy). Refuses, with the reason, a switch that cannot be made.
     * @return one line: when, from, to, why, how, how long
     */
    default String switchTransport(String name, String transport) throws ExportException {
        throw new ExportException("switching transports is not supported by this export service");
    }

    /** The export's transport switches, oldest first, one line each. Empty for an unknown name. */
    default List<String> switches(String name) {
        return List.of();
    }

    Optional<ExportInfo> get(String name);

    /** What the export has served (kept across restarts and switches); empty for an unknown name. */
    default Optional<ExportStatistics> statistics(String name) {
        return Optional.empty();
    }

    /** The serving connection's negotiated parameters; empty unless the export is active. */
    default Optional<ConnectionDetails> details(String name) {
        return Optional.empty();
    }

    /**
     * Files open on the export now and who holds them ("comm[pid] fd N, ..."), for progress lines
     * before a removal or switch that waits for them; empty unless the export is active.
     * @return open files and the holders' description
     */
    default Optional<OpenFilesInfo> openFiles(String name) {
        return Optional.empty();
    }

    /** Open files on an export and who holds them. */
    record OpenFilesInfo(int count, String holders) {
    }

    /** How long a removal (or restart) lets open files finish before the connection is aborted. */
    default long drainMillis() {
        return 10_000;
    }

    /** Every export's health, in the order of {@link #list()}. */
    default List<ExportHealth> health() {
        return List.of();
    }

    /** Whether this kernel and process can use FUSE passthrough, and why not. */
    default Availability passthroughSupport() {
        return Availability.no("unknown");
    }

    List<TransportInfo> transports();

    List<String> formats();
}
