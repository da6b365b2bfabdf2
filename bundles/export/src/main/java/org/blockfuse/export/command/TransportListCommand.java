package org.blockfuse.export.command;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.TransportInfo;

@Service
@Command(scope = "blockfuse", name = "transport-list", description = "Lists the FUSE transports, best first, and why one is unavailable.")
public class TransportListCommand implements Action {
    @Reference
    ExportService service;

    @Option(name = "--no-format", description = "Plain output for scripts.")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        ShellTable table = new ShellTable();
        table.column("Name");
        table.column("Rank");
        table.column("Available");
        table.column("Reason");
        for (TransportInfo t : service.transports()) {
            table.addRow().addContent(t.name(), t.rank(), t.available(), t.reason());
        }
        table.print(System.out, !noFormat);
        return null;
    }
}
