package org.blockfuse.export.internal;

import java.util.Map;

import org.blockfuse.api.ExportService;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;

/**
 * One instance per factory configuration {@code org.blockfuse.export}: created, changed and
 * deleted with its configuration (etc/org.blockfuse.export-NAME.cfg), it tells the manager.
 * Its keys are described by {@link ExportMetaType}.
 */
@Component(configurationPid = ExportService.FACTORY_PID, configurationPolicy = ConfigurationPolicy.REQUIRE, service = {})
public final class ExportConfiguration {
    @Reference
    private ExportService service;
    private String pid;

    @Activate
    @Modified
    void apply(Map<String, Object> props) {
        pid = String.valueOf(props.get("service.pid"));
        ((ExportManager) service).configured(pid, props);
    }

    @Deactivate
    void withdraw() {
        ((ExportManager) service).unconfigured(pid);
    }
}
