package org.blockfuse.uring.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.FuseChannel;
import org.blockfuse.api.OptionSpec;

/**
 * The shape of one session, from the channel's options:
 * <ul>
 * <li>{@code queue-depth}: entries per queue; default {@link #DEFAULT_DEPTH}, lowered so that all
 *     ring buffers of the export stay under {@link #DEFAULT_BUDGET} bytes;</li>
 * <li>{@code workers}: backend helpers per queue (0 = always inline); default depth - 1;</li>
 * <li>{@code offload-threshold-us}: mean service time above which batches go to the workers (default 20);</li>
 * <li>{@code pin-cpus}: auto (default: a queue's thread stays on its CPU while requests come one
 * or two at a time and may run anywhere while its queue is deep), true (always on its CPU) or false.</li>
 * </ul>
 */
public record UringConfig(int queues, int depth, int payloadSize, int workers, long offloadNanos, Pinning pinning,
        long spinNanos) {

    /** Where a queue's thread runs. */
    public enum Pinning {
        /** On its CPU while its requests come one or two at a time, anywhere while its queue is deep. */
        AUTO,
        /** Always on its CPU. */
        ALWAYS,
        /** Wherever the scheduler puts it. */
        NEVER
    }

    public boolean pinCpus() {
        return pinning != Pinning.NEVER;
    }
    public static final int DEFAULT_DEPTH = 16;
    /**
     * How long a ring thread polls its CQ before sleeping (UringQueue#spinForCompletions). Polling
     * yields the CPU between looks, so a long window costs a runnable client nothing: measured here
     * (bench/spin-ab-yield*-results.md) 100 µs with yield against 20 µs without was +6-9 % at QD 1
     * and equal at QD 64.
     */
    public static final int DEFAULT_SPIN_US = 100;
    public static final long DEFAULT_BUDGET = 64L << 20;

    public static final List<OptionSpec> SPECS = List.of(
            OptionSpec.integer("queue-depth", 0, 0, 4096, "io_uring: entries per CPU queue; 0 = " + DEFAULT_DEPTH
                    + ", lowered to keep an export's ring buffers under 64 MiB."),
            OptionSpec.integer("queue-workers", 0, 0, 1024, "io_uring: worker threads per queue for slow requests; "
                    + "unset = queue depth - 1, started on demand."),
            OptionSpec.integer("offload-threshold-us", 20, 0, 10_000_000, "io_uring: service time above which a "
                    + "queue hands requests to its workers instead of serving them on the ring thread."),
            OptionSpec.choice("pin-cpus", "auto", "io_uring: where each queue's thread runs: auto (on its CPU while "
                    + "requests come one or two at a time, which saves a cross-CPU wake-up per request; free to run "
                    + "on any CPU while its queue is deep), true (always on its CPU) or false.", "auto", "true", "false"),
            OptionSpec.integer("spin-us", DEFAULT_SPIN_US, 0, 1_000_000, "io_uring: microseconds a ring thread "
                    + "polls for completions (yielding the CPU to anything runnable between looks) before it sleeps."));
    static final int PAGE = 4096;
    /** The kernel's page limit per request when FUSE_MAX_PAGES was not negotiated. */
    static final int LEGACY_MAX_PAGES = 32;

    public static UringConfig of(FuseChannel channel) throws IOException {
        Map<String, String> o = channel.options();
        int queues = possibleCpus();
        int payload = payloadSize(channel);
        int depth;
        if (o.containsKey("queue-depth") && !o.get("queue-depth").trim().equals("0")) { // 0 = default
            depth = parse(o, "queue-depth", 1, 4096);
        } else {
            long perEntry = QueueMemory.bytesFor(1, payload);
            long fit = (DEFAULT_BUDGET - 1) / ((long) queues * perEntry);
            depth = (int) Math.max(1, Math.min(DEFAULT_DEPTH, fit));
        }
        // "workers" belongs to the legacy transport; ours are per queue
        int workers = o.containsKey("queue-workers") ? parse(o, "queue-workers", 0, 1024) : depth - 1;
        long offload = TimeUnit.MICROSECONDS.toNanos(
                o.containsKey("offload-threshold-us") ? parse(o, "offload-threshold-us", 0, 10_000_000) : 20);
        String p = o.getOrDefault("pin-cpus", "auto").trim();
        Pinning pin = p.equals("true") ? Pinning.ALWAYS : p.equals("false") ? Pinning.NEVER : Pinning.AUTO;
        long spin = TimeUnit.MICROSECONDS.toNanos(
                o.containsKey("spin-us") ? parse(o, "spin-us", 0, 1_000_000) : DEFAULT_SPIN_US);
        return new UringConfig(queues, depth, payload, workers, offload, pin, spin);
    }

    /**
     * The kernel refuses payload buffers smaller than max(8192, max_write, max_pages x 4096)
     * (fuse_uring_create).
     */
    static int payloadSize(FuseChannel channel) {
        int maxPages = channel.maxPages();
        return Math.max(8192, Math.max(channel.maxWrite(), maxPages * PAGE));
    }

    private static int parse(Map<String, String> o, String key, int min, int max) throws IOException {
        try {
            int v = Integer.parseInt(o.get(key).trim());
            if (v < min || v > max) {
                throw new IOException(key + "=" + v + " is outside " + min + ".." + max);
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IOException(key + "=" + o.get(key) + " is not a number");
        }
    }

    /**
     * num_possible_cpus(): the kernel has one FUSE queue per possible CPU (not per online CPU), and
     * switches to the rings only when every one of them has an entry.
     */
    public static int possibleCpus() throws IOException {
        return countCpuList(Files.readString(Path.of("/sys/devices/system/cpu/possible")).trim());
    }

    /** Counts a kernel CPU list such as {@code 0-3,8,10-11}. */
    static int countCpuList(String list) {
        int n = 0;
        for (String part : list.split(",")) {
            if (part.isEmpty()) {
                continue;
            }
            int dash = part.indexOf('-');
            n += dash < 0 ? 1 : Integer.parseInt(part.substring(dash + 1)) - Integer.parseInt(part.substring(0, dash)) + 1;
        }
        return n;
    }

    /** Reserved bytes of all ring buffers of one export. */
    public long memoryBytes() {
        return queues * QueueMemory.bytesFor(depth, payloadSize);
    }
}
