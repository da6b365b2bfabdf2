package org.blockfuse.export.internal;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

import org.blockfuse.api.BlockBackendFactory;
import org.blockfuse.api.ExportException;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.OptionSpec;

/**
 * Which option keys exist and who owns them: the export's own (restart, drain-grace), each
 * backend factory's and each transport's, as they declare them. An export's keys are checked
 * against its format's factory and every transport (either may serve it after a swap); a key
 * nobody owns is refused by name. Transports stay known once seen, so an export restarted while
 * one is away (a bundle being updated) keeps its keys for that transport.
 */
final class OptionCatalog {
    static final List<OptionSpec> EXPORT_OPTIONS = List.of(
            OptionSpec.choice("restart", "on-failure", "What to do when the connection dies under the export (aborted, "
                    + "unmounted by someone else, a transport failure): on-failure (mount again, backing off 1 s, 2 s, 4 s "
                    + "... at most 5 times in 10 minutes) or never (stay failed).", "on-failure", "never"),
            OptionSpec.choice("passthrough", "auto", "FUSE passthrough (Linux 6.9+, root): the kernel reads and writes "
                    + "a raw image itself, no request reaches a transport. auto: where every semantic holds (read-only "
                    + "and growable exports, block devices; not with cache=none); on: required (refused with the "
                    + "reason where it cannot hold); off.", "auto", "on", "off"),
            OptionSpec.integer("drain-grace", 30, 0, 3600, "Seconds that files opened before a switch from io_uring to "
                    + "legacy keep their old connection before it is cut off."),
            OptionSpec.choice("fuse-cache", "direct", "Kernel page cache for the exported file: direct (default; "
                    + "FOPEN_DIRECT_IO: every read and write of every client reaches blockfuse, nothing is cached twice, "
                    + "measured faster for random and sequential buffered I/O) or page (buffered clients share it across "
                    + "opens: a hot read-mostly set costs no requests; writes go through at once). O_DIRECT clients "
                    + "bypass it either way.", "direct", "page"),
            OptionSpec.choice("statistics", "on", "Per-request statistics (counts by opcode, bytes, errors by errno, "
                    + "latency percentiles) for export-stats, status and JMX; off counts requests only.", "on", "off"));

    /** By key: every option a transport ever declared in this JVM. */
    private final Map<String, OptionSpec> transportOptions = new ConcurrentHashMap<>();

    void transportArrived(FuseTransport t) {
        for (OptionSpec o : t.options()) {
            transportOptions.put(o.key(), o);
        }
    }

    /** The keys an export of {@code factory}'s format may have, by key. */
    Map<String, OptionSpec> known(BlockBackendFactory factory) {
        return merged(factory == null ? List.of() : List.of(factory));
    }

    /** Every option of the export, every installed factory and every transport seen, for Metatype. */
    Collection<OptionSpec> all(Collection<BlockBackendFactory> factories) {
        return merged(factories).values();
    }

    /** The export's own keys first, then the factories', then the transports'; the first owner of a key wins. */
    private Map<String, OptionSpec> merged(Collection<BlockBackendFactory> factories) {
        Map<String, OptionSpec> all = new LinkedHashMap<>();
        EXPORT_OPTIONS.forEach(o -> all.put(o.key(), o));
        factories.forEach(f -> f.options().forEach(o -> all.putIfAbsent(o.key(), o)));
        transportOptions.values().forEach(o -> all.putIfAbsent(o.key(), o));
        return all;
    }

    /** Refuses a key nobody owns and a value its owner's spec does not accept; one line naming the key. */
    void check(ExportSpec spec, BlockBackendFactory factory) throws ExportException {
        Map<String, OptionSpec> known = known(factory);
        for (Map.Entry<String, String> e : spec.options().entrySet()) {
            OptionSpec o = known.get(e.getKey());
            if (o == null) {
                TreeSet<String> names = new TreeSet<>(known.keySet());
                names.addAll(ExportSpecs.SPEC_KEYS);
                throw new ExportException("export " + spec.name() + ": unknown key '" + e.getKey() + "' (known for "
                        + spec.format() + ": " + String.join(", ", names) + ")");
            }
            String problem = o.problem(e.getValue());
            if (problem != null) {
                throw new ExportException(problem);
            }
        }
    }
}
