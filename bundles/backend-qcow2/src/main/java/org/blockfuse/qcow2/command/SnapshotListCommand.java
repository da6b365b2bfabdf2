package org.blockfuse.qcow2.command;

import java.nio.file.Path;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.completers.FileCompleter;
import org.apache.karaf.shell.support.table.ShellTable;
import org.blockfuse.qcow2.Qcow2Snapshot;
import org.blockfuse.qcow2.Qcow2Snapshots;

/** Lists the internal snapshots of a qcow2 image; only formats what {@link Qcow2Snapshots} reads. */
@Command(scope = "blockfuse", name = "snapshot-list", description = "Lists the internal snapshots of a qcow2 image")
@Service
public class SnapshotListCommand implements Action {

    private static final DateTimeFormatter DATE =
            DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneId.systemDefault());

    @Argument(index = 0, name = "image", description = "Path of the qcow2 image", required = true)
    @Completion(FileCompleter.class)
    String image;

    @Option(name = "--no-format", description = "Disable table rendered output")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        ShellTable table = new ShellTable();
        table.column("ID");
        table.column("Name");
        table.column("VM state size").alignRight();
        table.column("Date");
        for (Qcow2Snapshot s : Qcow2Snapshots.list(Path.of(image))) {
            table.addRow().addContent(s.id(), s.name(), s.vmStateSize(), DATE.format(s.date()));
        }
        table.print(System.out, !noFormat);
        return null;
    }
}
