package org.blockfuse.management.internal;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.management.ExportsMXBean;

/** The export service's MXBean. */
final class ExportsBean implements ExportsMXBean {
    private final ExportService service;

    ExportsBean(ExportService service) {
        this.service = service;
    }

    @Override
    public List<String> getNames() {
        return service.list().stream().map(ExportInfo::name).collect(Collectors.toList());
    }

    @Override
    public String add(String name, String image, String mountpoint, String format, boolean writable) throws Exception {
        ExportInfo info;
        try {
            info = service.add(new ExportSpec(name, Path.of(image), format == null || format.isEmpty() ? "raw" : format,
                    Path.of(mountpoint), writable, false, "auto", "auto", Map.of()));
        } catch (Exception e) {
            throw Failures.portable(e);
        }
        return "export " + info.name() + " mounted at " + info.mountpoint() + " via " + info.transport();
    }
}
