package org.blockfuse.export.command;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;

@Service
@Command(scope = "blockfuse", name = "export-list", description = "Lists the exports and their state.")
public class ExportListCommand implements Action {
    @Reference
    ExportService service;

    @Option(name = "--no-format", description = "Plain output for scripts: one line per export, columns separated by tabs.")
    boolean noFormat;

    @Option(name = "--verbose", aliases = "-v", description = "Also print each export's recent state changes and transport switches (when, from, to, why).")
    boolean verbose;

    @Override
    public Object execute() throws Exception {
        ShellTable table = new ShellTable();
        table.column("Name");
        table.column("Image");
        table.column("Format");
        table.column("Virtual size");
        table.column("Mountpoint");
        table.column("Transport");
        table.column("Writable");
        table.column("State");
        for (ExportInfo e : service.list()) {
            String state = e.detail().isEmpty() ? e.state() : e.state() + ": " + e.detail();
            table.addRow().addContent(e.name(), e.image(), e.format(), e.virtualSize() < 0 ? "-" : Long.toString(e.virtualSize()),
                    e.mountpoint(), e.transport(), e.writable(), state);
        }
        table.print(System.out, !noFormat);
        if (verbose) {
            for (ExportInfo e : service.list()) {
                System.out.println();
                System.out.println(e.name() + ":");
                for (String line : service.history(e.name())) {
                    System.out.println("  " + line);
                }
                java.util.List<String> switches = service.switches(e.name());
                if (!switches.isEmpty()) {
                    System.out.println("  transport switches:");
                    for (String line : switches) {
                        System.out.println("    " + line);
                    }
                }
            }
        }
        return null;
    }
}
