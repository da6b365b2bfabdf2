package org.blockfuse.export.command;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.blockfuse.api.ExportService;
import org.blockfuse.export.command.completers.ExportNameCompleter;
import org.blockfuse.export.command.completers.TransportCompleter;

@Service
@Command(scope = "blockfuse", name = "transport-switch", description = "Moves a live export to another transport without losing a request.",
        detailedDescription = "legacy -> io_uring happens on the live connection: open files keep working. io_uring -> legacy "
                + "needs a new connection (the kernel cannot move a connection back to /dev/fuse): it is mounted at the same path "
                + "beneath the old one, so new opens reach it at once, while files already open stay on the old connection until "
                + "they are closed or the export's drain-grace (default 30 s) ends; then the old connection is aborted and the "
                + "processes still holding it are logged. export-list --verbose shows each export's switches.")
public class TransportSwitchCommand implements Action {
    @Reference
    ExportService service;

    @Argument(index = 0, name = "name", required = true, description = "Export name.")
    @Completion(ExportNameCompleter.class)
    String name;

    @Argument(index = 1, name = "transport", required = true, description = "legacy or io_uring.")
    @Completion(TransportCompleter.class)
    String transport;

    @Override
    public Object execute() throws Exception {
        java.util.Optional<ExportService.OpenFilesInfo> open = service.openFiles(name);
        String how = service.switchTransport(name, transport);
        System.out.println("Export " + name + " switched: " + how);
        open.filter(o -> o.count() > 0 && how.contains("new connection")).ifPresent(o -> System.out.println(
                name + ": the " + o.count() + " file(s) open before the switch (" + o.holders() + ") stay on the old "
                + "connection until they are closed, at most the export's drain-grace (default 30 s); then it is cut off"));
        return null;
    }
}
