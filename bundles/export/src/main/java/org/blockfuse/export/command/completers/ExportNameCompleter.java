package org.blockfuse.export.command.completers;

import java.util.List;

import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;

/** Completes export names. */
@Service
public class ExportNameCompleter implements Completer {
    @Reference
    ExportService service;

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        StringsCompleter s = new StringsCompleter();
        service.list().stream().map(ExportInfo::name).forEach(s.getStrings()::add);
        return s.complete(session, commandLine, candidates);
    }
}
