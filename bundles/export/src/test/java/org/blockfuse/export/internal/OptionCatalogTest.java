package org.blockfuse.export.internal;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.blockfuse.api.Availability;
import org.blockfuse.api.ExportException;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.OptionSpec;
import org.blockfuse.api.TransportSession;
import org.blockfuse.raw.RawBackendFactory;
import org.junit.jupiter.api.Test;

class OptionCatalogTest {
    /** A transport that declares one key, as the real ones do. */
    private static final FuseTransport LEGACY_LIKE = new FuseTransport() {
        @Override
        public String name() {
            return "legacy";
        }

        @Override
        public int rank() {
            return 10;
        }

        @Override
        public Availability availability() {
            return Availability.yes();
        }

        @Override
        public List<OptionSpec> options() {
            return List.of(OptionSpec.integer("workers", 0, 0, 256, "threads"));
        }

        @Override
        public TransportSession attach(FuseChannel channel) {
            throw new UnsupportedOperationException();
        }
    };

    private static ExportSpec spec(Map<String, String> options) {
        return new ExportSpec("n", Path.of("/i.raw"), "raw", Path.of("/m.img"), true, false, "auto", "auto", options);
    }

    @Test
    void keysOwnedByTheExportTheBackendOrATransportPassAndTheRestAreRefusedByName() throws Exception {
        OptionCatalog c = new OptionCatalog();
        c.transportArrived(LEGACY_LIKE);
        RawBackendFactory raw = new RawBackendFactory();
        c.check(spec(Map.of("cache", "none", "workers", "3", "restart", "never", "drain-grace", "5", "create", "1G")), raw);
        ExportException e = assertThrows(ExportException.class, () -> c.check(spec(Map.of("writeable", "true")), raw));
        assertEquals("export n: unknown key 'writeable' (known for raw: allow-other, cache, create, drain-grace, format, "
                + "fuse-cache, growable, image, mountpoint, name, passthrough, restart, statistics, transport, workers, "
                + "writable)", e.getMessage());
        // a qcow2 key is not a raw key
        assertTrue(assertThrows(ExportException.class, () -> c.check(spec(Map.of("snapshot", "s1")), raw)).getMessage()
                .startsWith("export n: unknown key 'snapshot'"));
    }

    @Test
    void valuesAreCheckedAsTheirOwnerDeclares() {
        OptionCatalog c = new OptionCatalog();
        c.transportArrived(LEGACY_LIKE);
        RawBackendFactory raw = new RawBackendFactory();
        assertEquals("cache must be writeback or none, not 'fast'",
                assertThrows(ExportException.class, () -> c.check(spec(Map.of("cache", "fast")), raw)).getMessage());
        assertEquals("workers must be a whole number from 0 to 256, not 'many'",
                assertThrows(ExportException.class, () -> c.check(spec(Map.of("workers", "many")), raw)).getMessage());
        assertEquals("restart must be on-failure or never, not 'always'",
                assertThrows(ExportException.class, () -> c.check(spec(Map.of("restart", "always")), raw)).getMessage());
        assertTrue(assertThrows(ExportException.class, () -> c.check(spec(Map.of("create", "lots")), raw)).getMessage()
                .startsWith("create: 'lots' is not a size"));
    }

    @Test
    void aTransportsKeysStayKnownWhileItIsAwayAndMetatypeListsEveryKeyOnce() {
        OptionCatalog c = new OptionCatalog();
        c.transportArrived(LEGACY_LIKE);
        assertTrue(c.known(null).containsKey("workers"));
        List<String> keys = c.all(List.of(new RawBackendFactory())).stream().map(OptionSpec::key).toList();
        assertEquals(List.of("restart", "passthrough", "drain-grace", "fuse-cache", "statistics", "cache", "create", "workers"), keys);
    }
}
