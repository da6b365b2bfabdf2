package org.blockfuse.export.command;

import java.io.PrintStream;

import org.blockfuse.api.ExportService;

/** Says, before a command blocks on a drain, which open files it waits for and for how long at most. */
final class DrainNotice {
    private DrainNotice() {
    }

    /** Prints one line when clients hold the export's file open, nothing otherwise. */
    static void before(ExportService service, String name, String what, PrintStream out) {
        service.openFiles(name).filter(o -> o.count() > 0).ifPresent(o -> {
            out.println(name + ": " + o.count() + (o.count() == 1 ? " file is" : " files are") + " open (" + o.holders()
                    + "); " + what + " waits up to " + service.drainMillis() / 1000
                    + " s for them to close, then aborts the connection (they get an error)");
            out.flush();
        });
    }
}
