package org.blockfuse.export.command;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.export.command.completers.ExportNameCompleter;

@Service
@Command(scope = "blockfuse", name = "export-restart", description = "Stops an export and mounts it again on a new connection.",
        detailedDescription = "Drains clients like export-remove (up to 10 s, then the connection is aborted), then starts "
                + "the export again from its configuration and resets its automatic-restart budget. Use it for an export "
                + "that stayed failed after too many automatic restarts.")
public class ExportRestartCommand implements Action {
    @Reference
    ExportService service;

    @Argument(index = 0, name = "name", required = true, description = "Export name.")
    @Completion(ExportNameCompleter.class)
    String name;

    @Override
    public Object execute() throws Exception {
        DrainNotice.before(service, name, "the restart", System.out);
        ExportInfo info = service.restart(name);
        System.out.println("Export " + name + " restarted: " + info.state() + " at " + info.mountpoint() + " via " + info.transport());
        return null;
    }
}
