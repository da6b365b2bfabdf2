package org.blockfuse.itests;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * One client thread writing random 4 KiB blocks at random block offsets of a mounted file, with an
 * fdatasync every {@link #FSYNC_EVERY} writes, and remembering every write the file system
 * acknowledged (the write call returned). Each block carries its sequence number and its own
 * offset, then a payload drawn from a generator seeded with (seed, sequence number), so the
 * content of any acknowledged write can be rebuilt and checked afterwards. One write at a time:
 * at most one is in flight when the server dies.
 */
final class AckedWriter implements Runnable {
    static final int BLOCK = 4096;
    static final int FSYNC_EVERY = 64;

    /** How the image's blocks compare with the log (see {@link #check}). */
    record Check(int acknowledged, int offsets, int lost, int stray, String inFlight) {
    }

    private final Path file;
    private final long blocks;
    private final long seed;
    private final Thread thread;
    /** Offset to the sequence number of the latest acknowledged write there; the writer's only. */
    private final Map<Long, Long> latest = new HashMap<>();
    private volatile int acknowledged;
    private volatile int fsyncs;
    /** The write issued and not yet returned: its offset (-1: none) and sequence number. */
    private volatile long inFlightOffset = -1;
    private volatile long inFlightSeq;
    /** An fdatasync issued and not yet returned. */
    private volatile boolean inFsync;
    private volatile boolean stop;
    private volatile IOException error;
    private volatile long errorNanos;

    AckedWriter(String name, Path file, long size, long seed) {
        this.file = file;
        this.blocks = size / BLOCK;
        this.seed = seed;
        this.thread = new Thread(this, "acked-writer-" + name);
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    @Override
    public void run() {
        Random where = new Random(seed);
        ByteBuffer block = ByteBuffer.allocateDirect(BLOCK);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            for (long seq = 1; !stop; seq++) {
                long offset = (long) where.nextInt((int) blocks) * BLOCK;
                fill(block, seq, offset);
                inFlightSeq = seq;
                inFlightOffset = offset;
                while (block.hasRemaining()) {
                    ch.write(block, offset + block.position());
                }
                latest.put(offset, seq);
                inFlightOffset = -1;
                acknowledged++;
                if (seq % FSYNC_EVERY == 0) {
                    inFsync = true;
                    ch.force(false);
                    inFsync = false;
                    fsyncs++;
                }
            }
        } catch (IOException e) {
            errorNanos = System.nanoTime();
            error = e;
        }
    }

    /** The block written with sequence number {@code seq} at {@code offset}: header, then the seeded payload. */
    private void fill(ByteBuffer block, long seq, long offset) {
        block.clear();
        block.putLong(seq).putLong(offset);
        byte[] payload = new byte[BLOCK - 16];
        new Random(seed * 0x9E3779B97F4A7C15L + seq).nextBytes(payload);
        block.put(payload).flip();
    }

    private boolean holds(ByteBuffer image, long offset, long seq) {
        ByteBuffer want = ByteBuffer.allocate(BLOCK);
        fill(want, seq, offset);
        return image.slice((int) offset, BLOCK).equals(want);
    }

    private static boolean zero(ByteBuffer image, long offset) {
        return image.slice((int) offset, BLOCK).equals(ByteBuffer.allocate(BLOCK));
    }

    int acknowledged() {
        return acknowledged;
    }

    int fsyncs() {
        return fsyncs;
    }

    IOException error() {
        return error;
    }

    /** Milliseconds from {@code sinceNanos} to the writer's first error (it must have one). */
    long errorMillisAfter(long sinceNanos) {
        return TimeUnit.NANOSECONDS.toMillis(errorNanos - sinceNanos);
    }

    /** Waits up to {@code millis} for the writer to end (it ends only on an error or {@link #halt()}). */
    boolean awaitEnd(long millis) throws InterruptedException {
        thread.join(millis);
        return !thread.isAlive();
    }

    /** Asks the writer to stop after its current write (clean-up; a writer blocked in the kernel stays blocked). */
    void halt() {
        stop = true;
    }

    /**
     * Compares the image (read directly, not through a mount) with the log, once the writer has
     * ended: at every offset the latest acknowledged write must be there (else it is lost); an
     * offset never acknowledged must still be zero (else a write landed where none was
     * acknowledged: stray). Only the write in flight at the end may show either its old or its
     * new content.
     */
    Check check(byte[] imageBytes) {
        if (thread.isAlive()) {
            throw new IllegalStateException("the writer is still running");
        }
        ByteBuffer image = ByteBuffer.wrap(imageBytes);
        long flyingAt = inFlightOffset;
        String inFlight = flyingAt >= 0 ? null : inFsync ? "no write (an fdatasync)" : "none";
        int lost = 0;
        int stray = 0;
        for (long offset = 0; offset < blocks * BLOCK; offset += BLOCK) {
            Long seq = latest.get(offset);
            boolean old = seq == null ? zero(image, offset) : holds(image, offset, seq);
            if (offset == flyingAt) {
                boolean fresh = holds(image, offset, inFlightSeq);
                inFlight = "write " + inFlightSeq + " at " + offset + ": " + (fresh ? "new" : old ? "old" : "neither (torn)");
                old |= fresh;
            }
            if (!old) {
                if (seq == null) {
                    stray++;
                } else {
                    lost++;
                }
            }
        }
        return new Check(acknowledged, latest.size(), lost, stray, inFlight);
    }
}
