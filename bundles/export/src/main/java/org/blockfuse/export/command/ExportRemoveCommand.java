package org.blockfuse.export.command;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.blockfuse.api.ExportService;
import org.blockfuse.export.command.completers.ExportNameCompleter;

@Service
@Command(scope = "blockfuse", name = "export-remove", description = "Unmounts an export and deletes its configuration.",
        detailedDescription = "Waits for clients that still hold the file open (up to 10 s, then the connection is aborted), "
                + "flushes the image, unmounts and removes the mountpoint file if blockfuse created it.")
public class ExportRemoveCommand implements Action {
    @Reference
    ExportService service;

    @Argument(index = 0, name = "name", required = true, description = "Export name.")
    @Completion(ExportNameCompleter.class)
    String name;

    @Override
    public Object execute() throws Exception {
        DrainNotice.before(service, name, "the removal", System.out);
        service.remove(name);
        System.out.println("Export " + name + " removed");
        return null;
    }
}
