package org.blockfuse.itests;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * fio randrw against a mounted file: 4 jobs × queue depth 16, each job in its own 4 MiB region
 * (--offset_increment), as threads of one process (--thread) so that killing its PID ends all of
 * it. Runs until its server goes away (or 60 s); {@link #close()} kills it by PID.
 */
final class FioLoad implements AutoCloseable {
    static final int JOBS = 4;
    static final long REGION = 4L << 20;
    /** The part of the file fio touches; anything after it is left alone. */
    static final long SPAN = JOBS * REGION;

    private final Process process;
    private final Path output;

    private FioLoad(Process process, Path output) {
        this.process = process;
        this.output = output;
    }

    /** Starts fio on {@code file}; its output goes to {@code output}. */
    static FioLoad start(String name, Path file, Path output) throws IOException {
        Process p = new ProcessBuilder("fio", "--name=" + name, "--filename=" + file, "--rw=randrw", "--bs=4k",
                "--direct=1", "--ioengine=libaio", "--iodepth=16", "--numjobs=" + JOBS, "--thread",
                "--size=" + REGION, "--offset_increment=" + REGION, "--time_based", "--runtime=60",
                "--verify_state_save=0", "--group_reporting")
                .redirectErrorStream(true).redirectOutput(output.toFile()).start();
        return new FioLoad(p, output);
    }

    /** Waits until fio has really written through the export: the sparse {@code image} gains {@code bytes} of blocks. */
    void awaitWritten(Path image, long bytes) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new AssertionError("fio ended before it got going:\n" + output());
            }
            if (allocated(image) >= bytes) {
                return;
            }
            Thread.sleep(20);
        }
        throw new AssertionError("fio did not get going on " + image + ":\n" + output());
    }

    /** The bytes allocated to {@code file} (st_blocks, which Java's attribute views do not offer). */
    static long allocated(Path file) throws IOException, InterruptedException {
        Process stat = new ProcessBuilder("stat", "-c", "%b", file.toString()).redirectErrorStream(true).start();
        String out = new String(stat.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
        if (stat.waitFor() != 0) {
            throw new IOException("stat " + file + ": " + out);
        }
        return Long.parseLong(out) * 512;
    }

    /** Waits up to {@code millis} for fio to end by itself. */
    boolean awaitEnd(long millis) throws InterruptedException {
        return process.waitFor(millis, TimeUnit.MILLISECONDS);
    }

    int exitValue() {
        return process.exitValue();
    }

    String output() {
        try {
            return Files.readString(output, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no fio output: " + e + ")";
        }
    }

    /** The first line of fio's output that reports an error, or "" (for the figures). */
    String firstError() {
        return output().lines().filter(l -> l.contains("error")).findFirst().orElse("").trim();
    }

    /** Kills fio by its PID (and anything it started) if it still runs. */
    @Override
    public void close() throws InterruptedException {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }
}
