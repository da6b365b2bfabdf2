package org.blockfuse.export.command;

import java.io.PrintStream;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.blockfuse.api.Availability;
import org.blockfuse.api.ExportHealth;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.TransportInfo;

/** Health of every export and transport, and what this kernel supports. */
@Service
@Command(scope = "blockfuse", name = "status", description = "Health of every export (state, transport, I/O errors in "
        + "the last minute, automatic restarts) and transport, and whether this kernel supports io_uring and passthrough.")
public class StatusCommand implements Action {
    @Reference
    ExportService service;

    @Option(name = "--no-format", description = "Plain output for scripts: tab-separated, one line per row.")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        PrintStream out = System.out;
        ShellTable exports = new ShellTable();
        for (String c : new String[] {"Export", "State", "Transport", "I/O errors (1 min)", "Restarts", "Detail"}) {
            exports.column(c);
        }
        int unhealthy = 0;
        for (ExportHealth h : service.health()) {
            exports.addRow().addContent(h.name(), h.state(), h.transport().isEmpty() ? "-" : h.transport(),
                    h.ioErrorsLastMinute(), h.restarts() + "/" + h.restartLimit(), h.detail());
            if (!h.state().equals("active") || h.ioErrorsLastMinute() > 0) {
                unhealthy++;
            }
        }
        ShellTable support = new ShellTable();
        support.column("Capability");
        support.column("Available");
        support.column("Reason");
        for (TransportInfo t : service.transports()) {
            support.addRow().addContent("transport " + t.name(), t.available(), t.reason());
        }
        Availability p = service.passthroughSupport();
        support.addRow().addContent("passthrough", p.available(), p.reason());
        exports.print(out, !noFormat);
        out.println();
        support.print(out, !noFormat);
        if (!noFormat) {
            out.println();
            out.println(unhealthy == 0 ? "all exports healthy" : unhealthy + " export(s) need attention");
        }
        return null;
    }
}
