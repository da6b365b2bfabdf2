package org.blockfuse.export.command.completers;

import java.util.List;

import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.TransportInfo;

/** Completes "auto" and the installed transports. */
@Service
public class TransportCompleter implements Completer {
    @Reference
    ExportService service;

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        StringsCompleter s = new StringsCompleter();
        s.getStrings().add("auto");
        service.transports().stream().map(TransportInfo::name).forEach(s.getStrings()::add);
        return s.complete(session, commandLine, candidates);
    }
}
