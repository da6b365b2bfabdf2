package org.blockfuse.export.command;

import java.io.PrintStream;
import java.util.List;
import java.util.Optional;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.blockfuse.api.ConnectionDetails;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.export.command.completers.ExportNameCompleter;

/** One export in detail: what was negotiated with the kernel, its queues, and its history. */
@Service
@Command(scope = "blockfuse", name = "export-info", description = "One export in detail: negotiated FUSE protocol "
        + "minor, max_write, max_pages and flags, transport queues and depth, passthrough state, state changes and switches.")
public class ExportInfoCommand implements Action {
    @Reference
    ExportService service;

    @Argument(index = 0, name = "name", description = "The export.", required = true)
    @Completion(ExportNameCompleter.class)
    String name;

    @Option(name = "--no-format", description = "Plain output for scripts: one 'key<TAB>value' line per property.")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        ExportInfo e = service.get(name).orElseThrow(() -> new IllegalArgumentException("no export named '" + name + "'"));
        ShellTable t = new ShellTable();
        t.column("Property");
        t.column("Value");
        row(t, "name", e.name());
        row(t, "state", e.detail().isEmpty() ? e.state() : e.state() + ": " + e.detail());
        row(t, "image", e.image());
        row(t, "format", e.format());
        row(t, "virtual size", e.virtualSize() < 0 ? "-" : e.virtualSize());
        row(t, "mountpoint", e.mountpoint());
        row(t, "writable", e.writable());
        row(t, "growable", e.growable());
        Optional<ConnectionDetails> d = service.details(name);
        if (d.isPresent()) {
            ConnectionDetails c = d.get();
            row(t, "connection", c.connection());
            row(t, "protocol", "7." + c.minor());
            row(t, "max_write", c.maxWrite());
            row(t, "max_pages", c.maxPages());
            row(t, "flags", String.join(",", c.flags()));
            row(t, "transport", c.transport());
            row(t, "layout", c.layout());
            row(t, "passthrough", c.passthrough());
            row(t, "open files", c.openFiles());
            row(t, "waiting", c.waiting());
            row(t, "draining connections", c.draining());
            for (QueueStatistics q : c.queues()) {
                row(t, "queue " + q.queue(), q.transport() + " depth " + q.depth() + ", busy " + q.busy() + ", served "
                        + q.served() + ", offloads " + q.offloads());
            }
        }
        List<String> history = service.history(name);
        for (int i = 0; i < history.size(); i++) {
            row(t, "change " + (i + 1), history.get(i));
        }
        List<String> switches = service.switches(name);
        for (int i = 0; i < switches.size(); i++) {
            row(t, "switch " + (i + 1), switches.get(i));
        }
        PrintStream out = System.out;
        t.print(out, !noFormat);
        return null;
    }

    private static void row(ShellTable t, String key, Object value) {
        t.addRow().addContent(key, value);
    }
}
