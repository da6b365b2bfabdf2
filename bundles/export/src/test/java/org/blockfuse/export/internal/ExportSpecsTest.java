package org.blockfuse.export.internal;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.Map;

import org.blockfuse.api.ExportException;
import org.blockfuse.api.ExportSpec;
import org.junit.jupiter.api.Test;

class ExportSpecsTest {
    @Test
    void theNameComesFromTheKeyThePidOrTheFile() {
        assertEquals("a", ExportSpecs.nameOf("org.blockfuse.export~x", Map.of("name", "a")));
        assertEquals("x", ExportSpecs.nameOf("org.blockfuse.export~x", Map.of()));
        assertEquals("vm1", ExportSpecs.nameOf("org.blockfuse.export.1234",
                Map.of("felix.fileinstall.filename", "file:/opt/karaf/etc/org.blockfuse.export-vm1.cfg")));
    }

    @Test
    void propertiesRoundTrip() throws Exception {
        ExportSpec spec = new ExportSpec("n", Path.of("/i.raw"), "raw", Path.of("/m.img"), true, true, "off", "legacy",
                Map.of("workers", "3", "cache", "none"));
        Map<String, Object> props = ExportSpecs.toMap(ExportSpecs.toProperties(spec, null));
        assertEquals(spec, ExportSpecs.fromProperties("n", props));
    }

    @Test
    void badValuesAreNamed() {
        ExportException e = assertThrows(ExportException.class,
                () -> ExportSpecs.fromProperties("n", Map.of("image", "/i", "mountpoint", "/m", "writable", "yes")));
        assertEquals("export n: 'writable' must be true or false, not 'yes'", e.getMessage());
        assertTrue(assertThrows(ExportException.class, () -> ExportSpecs.fromProperties("n", Map.of("image", "/i")))
                .getMessage().contains("no 'mountpoint'"));
    }

    @Test
    void everyOtherKeyIsAnOptionAndFrameworkKeysAreNot() throws Exception {
        ExportSpec spec = ExportSpecs.fromProperties("n", Map.of("image", "/i.raw", "mountpoint", "/m.img", "service.pid", "x",
                "felix.fileinstall.filename", "file:/etc/x.cfg", "component.name", "c", "restart", "never", "writeable", "true"));
        // whether anyone owns "writeable" is OptionCatalog's question, asked when the export starts
        assertEquals(Map.of("restart", "never", "writeable", "true"), spec.options());
    }
}
