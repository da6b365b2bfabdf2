package org.blockfuse.export.command;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.ExportStatistics;
import org.blockfuse.api.LatencyDistribution;
import org.blockfuse.api.QueueStatistics;
import org.blockfuse.export.command.completers.ExportNameCompleter;

/**
 * Per-export request statistics. Without an interval: everything since the export was configured.
 * With one: ops/s, MiB/s and latency percentiles of each interval, redrawn in place on a terminal.
 */
@Service
@Command(scope = "blockfuse", name = "export-stats", description = "Shows what exports have served: requests by "
        + "opcode, bytes, errors by errno, requests in flight, latency percentiles and the transport's queues. "
        + "With --interval, a refreshing view of ops/s, MiB/s and p99 per interval.")
public class ExportStatsCommand implements Action {
    private static final double MIB = 1024.0 * 1024.0;

    @Reference
    ExportService service;

    @Argument(index = 0, name = "name", description = "The export (all exports when omitted).", required = false)
    @Completion(ExportNameCompleter.class)
    String name;

    @Option(name = "--interval", aliases = "-i", description = "Seconds between rounds: print per-interval rates "
            + "until Ctrl-C or --count rounds (1 to 3600).")
    int interval;

    @Option(name = "--count", aliases = "-n", description = "Rounds to print with --interval (0: until Ctrl-C).")
    int count;

    @Option(name = "--no-format", description = "Plain output for scripts: tab-separated, one line per row, no redrawing.")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        if (interval < 0 || interval > 3600) {
            throw new IllegalArgumentException("--interval must be between 1 and 3600 seconds, got " + interval);
        }
        if (count < 0) {
            throw new IllegalArgumentException("--count must be 0 (until Ctrl-C) or more, got " + count);
        }
        if (count > 0 && interval == 0) {
            throw new IllegalArgumentException("--count needs --interval");
        }
        List<String> names = names();
        if (interval == 0) {
            printTotals(names);
            return null;
        }
        watch(names);
        return null;
    }

    private List<String> names() {
        if (name != null) {
            if (service.get(name).isEmpty()) {
                throw new IllegalArgumentException("no export named '" + name + "'");
            }
            return List.of(name);
        }
        List<String> all = new ArrayList<>();
        for (ExportInfo e : service.list()) {
            all.add(e.name());
        }
        return all;
    }

    private void printTotals(List<String> names) {
        PrintStream out = System.out;
        ShellTable totals = new ShellTable();
        for (String c : new String[] {"Name", "Requests", "Reads", "Read bytes", "Writes", "Written bytes", "Errors",
                "In flight", "Peak", "p50 us", "p90 us", "p99 us", "p99.9 us", "Max us", "Passthrough opens"}) {
            totals.column(c);
        }
        ShellTable ops = table("Name", "Opcode", "Requests");
        ShellTable errors = table("Name", "Errno", "Replies");
        ShellTable queues = table("Name", "Transport", "Queue", "Served", "Busy", "Depth", "Offloads");
        for (String n : names) {
            Optional<ExportStatistics> maybe = service.statistics(n);
            if (maybe.isEmpty()) {
                continue;
            }
            ExportStatistics s = maybe.get();
            LatencyDistribution l = s.latency();
            totals.addRow().addContent(n, s.requests(), s.reads(), s.bytesRead(), s.writes(), s.bytesWritten(),
                    s.enabled() ? s.errorCount() : "-", s.inFlight(), s.peakInFlight(), micros(l, 50), micros(l, 90),
                    micros(l, 99), micros(l, 99.9), l.max() / 1000, s.passthroughOpens());
            for (Map.Entry<String, Long> o : s.byOpcode().entrySet()) {
                ops.addRow().addContent(n, o.getKey(), o.getValue());
            }
            for (Map.Entry<String, Long> e : s.errors().entrySet()) {
                errors.addRow().addContent(n, e.getKey(), e.getValue());
            }
            for (QueueStatistics q : s.queues()) {
                queues.addRow().addContent(n, q.transport(), q.queue(), q.served(), q.busy(), q.depth(), q.offloads());
            }
            if (!s.enabled()) {
                out.println(n + ": statistics are off (key statistics=off); only requests are counted");
            }
        }
        totals.print(out, !noFormat);
        out.println();
        ops.print(out, !noFormat);
        out.println();
        errors.print(out, !noFormat);
        out.println();
        queues.print(out, !noFormat);
    }

    private static ShellTable table(String... columns) {
        ShellTable t = new ShellTable();
        for (String c : columns) {
            t.column(c);
        }
        return t;
    }

    private static long micros(LatencyDistribution l, double percentile) {
        return l.valueAtPercentile(percentile) / 1000;
    }

    /** Rounds of per-interval figures; on a terminal each round overwrites the previous one. */
    private void watch(List<String> names) throws InterruptedException {
        PrintStream out = System.out;
        List<ExportStatistics> before = snapshot(names);
        long t0 = System.nanoTime();
        int lines = 0;
        for (int round = 1; count == 0 || round <= count; round++) {
            long due = t0 + round * (long) interval * 1_000_000_000L;
            long wait = due - System.nanoTime();
            if (wait > 0) {
                Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            }
            List<ExportStatistics> now = snapshot(names);
            double seconds = (System.nanoTime() - (due - (long) interval * 1_000_000_000L)) / 1e9;
            ShellTable t = table("Name", "Reads/s", "Writes/s", "Read MiB/s", "Write MiB/s", "Ops/s", "p99 us",
                    "In flight", "Errors");
            for (ExportStatistics s : now) {
                ExportStatistics b = find(before, s.name());
                if (b == null) {
                    continue;
                }
                LatencyDistribution l = s.latency().since(b.latency());
                t.addRow().addContent(s.name(), rate(s.reads() - b.reads(), seconds), rate(s.writes() - b.writes(), seconds),
                        String.format(Locale.ROOT, "%.1f", (s.bytesRead() - b.bytesRead()) / MIB / seconds),
                        String.format(Locale.ROOT, "%.1f", (s.bytesWritten() - b.bytesWritten()) / MIB / seconds),
                        rate(s.requests() - b.requests(), seconds), micros(l, 99), s.inFlight(),
                        s.errorCount() - b.errorCount());
            }
            before = now;
            if (noFormat) {
                t.print(out, false);
                continue;
            }
            if (lines > 0) {
                out.print("\033[" + lines + "F\033[J"); // back to the first line of the last round, clear below
            }
            java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
            PrintStream p = new PrintStream(buf, true, java.nio.charset.StandardCharsets.UTF_8);
            p.println("round " + round + (count > 0 ? " of " + count : "") + ", every " + interval + " s (Ctrl-C stops)");
            t.print(p, true);
            String text = buf.toString(java.nio.charset.StandardCharsets.UTF_8);
            out.print(text);
            out.flush();
            lines = (int) text.chars().filter(c -> c == '\n').count();
        }
    }

    private List<ExportStatistics> snapshot(List<String> names) {
        List<ExportStatistics> all = new ArrayList<>();
        for (String n : names) {
            service.statistics(n).ifPresent(all::add);
        }
        return all;
    }

    private static ExportStatistics find(List<ExportStatistics> list, String name) {
        for (ExportStatistics s : list) {
            if (s.name().equals(name)) {
                return s;
            }
        }
        return null;
    }

    private static long rate(long n, double seconds) {
        return Math.round(n / seconds);
    }
}
