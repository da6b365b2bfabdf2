package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackend.Extent;
import org.blockfuse.api.ImageException;

/**
 * Serves one mutant as the export would and checks what it may and may not do. Open it through the
 * factory: a refusal must be an {@link ImageException} with a one-line message. Opened, every read over
 * the disk and the allocation walk that SEEK_DATA/SEEK_HOLE use must fill its buffer or fail with an
 * IOException, nothing else; and
 * <ul>
 * <li>a guest range the change cannot reach (per {@link ImageLayout#effect}) reads and maps as before;</li>
 * <li>a range reported as a hole reads as zeros (a wrong hole makes hole-aware copiers drop data);</li>
 * <li>extents tile the disk, and a seek from inside an extent ends where the extent ends;</li>
 * <li>reads of the same bytes with other offsets and lengths give the same bytes.</li>
 * </ul>
 * Time and memory are bounded by the caller (it runs this on a worker thread). Violations throw
 * AssertionError; anything but IOException escaping from the backend is passed through as the bug it is.
 */
final class MutantProbe {

    enum Outcome { REFUSED, SERVED, EIO }

    /** The part of the disk read in full; a mutated size larger than this is sampled past it. */
    static final int FULL_READ_LIMIT = 16 << 20;
    private static final int SAMPLED_READS = 48;
    private static final int SEEK_PROBES = 8;
    private static final int REREADS = 16;
    private static final long WALK_NANOS = 3_000_000_000L;
    private static final int MAX_EXTENTS = 1 << 20;
    private static final int[] CHUNKS = {4096, 65536, 65536 + 512, 1 << 20};
    private static final byte[] ZEROS = new byte[1 << 20];

    /** What the unmutated image serves for one view. */
    record Reference(byte[] content, List<Extent> extents) {
    }

    /** Per-probe counters the summary reports. */
    static final class Notes {
        String refusal;
        String eio;
        boolean sampled;
        boolean walkCut;
        /** Heap bytes the worker thread allocated for this mutant (set by the caller, which measures it). */
        long allocated;
    }

    /** Buffers owned by the test thread, reused by every probe (so their allocation is not the reader's). */
    static final class Scratch {
        final byte[] got = new byte[FULL_READ_LIMIT];
        final boolean[] ok = new boolean[FULL_READ_LIMIT / CHUNKS[0] + 1];
        final ByteBuffer direct = ByteBuffer.allocateDirect(1 << 20);
        final ByteBuffer heap = ByteBuffer.allocate(1 << 20);
        final byte[] reread = new byte[1 << 20];
    }

    private final Path image;
    private final Map<String, String> options;
    private final Reference reference;
    private final ImageLayout.Effect effect;
    private final Random random;
    private final Scratch s;
    private final Notes notes = new Notes();
    private BlockBackend backend;
    private int chunk;
    private long covered;

    MutantProbe(Path image, Map<String, String> options, Reference reference, ImageLayout.Effect effect,
                Random random, Scratch scratch) {
        this.image = image;
        this.options = options;
        this.reference = reference;
        this.effect = effect;
        this.random = random;
        this.s = scratch;
    }

    Notes notes() {
        return notes;
    }

    Outcome run() throws IOException {
        try {
            backend = new Qcow2BackendFactory().open(new BackendRequest(image, false, options));
        } catch (ImageException e) {
            String m = e.getMessage();
            if (m == null || m.isBlank() || m.chars().anyMatch(Character::isISOControl) || m.length() >= 4096) {
                throw new AssertionError("a refusal needs a one-line message, got: " + m);
            }
            if (effect.strictlyInert()) {
                throw new AssertionError("refused although the change touches nothing the view reads: " + m);
            }
            notes.refusal = m;
            return Outcome.REFUSED;
        } catch (IOException e) {
            throw new AssertionError("open failed with " + e.getClass().getName() + " instead of a refusal: "
                    + e.getMessage(), e);
        }
        try (BlockBackend b = backend) {
            if (b.size() < 0) {
                throw new AssertionError("negative size " + b.size());
            }
            if (!effect.any() && b.size() != reference.content().length) {
                throw new AssertionError("size " + b.size() + " changed from " + reference.content().length
                        + " though the change cannot reach it");
            }
            readAll();
            List<Extent> extents = walk();
            checkExtents(extents);
            probeSeeks(extents);
            reread();
            sampleBeyond();
        }
        return notes.eio == null ? Outcome.SERVED : Outcome.EIO;
    }

    /** Pass 1: the disk (up to FULL_READ_LIMIT) in chunks of one size, alternating heap and direct buffers. */
    private void readAll() throws IOException {
        long size = backend.size();
        covered = Math.min(size, FULL_READ_LIMIT);
        chunk = CHUNKS[random.nextInt(CHUNKS.length)];
        byte[] ref = reference.content();
        int index = 0;
        for (long pos = 0; pos < covered; pos += chunk, index++) {
            int n = (int) Math.min(chunk, covered - pos);
            ByteBuffer buf = (index & 1) == 0 ? s.direct : s.heap;
            boolean ok = read(pos, n, buf, s.got, (int) pos);
            s.ok[index] = ok;
            boolean mayDiffer = effect.mayAffect(pos, pos + n);
            if (!mayDiffer) {
                if (!ok) {
                    throw new AssertionError("read of [" + pos + ", +" + n + ") failed though the change cannot"
                            + " reach it: " + notes.eio);
                }
                int mismatch = Arrays.mismatch(s.got, (int) pos, (int) pos + n, ref, (int) pos, (int) pos + n);
                if (mismatch >= 0) {
                    throw new AssertionError("guest byte " + (pos + mismatch) + " changed though the change cannot"
                            + " reach it");
                }
            }
        }
    }

    /** Reads [pos, pos + n) into into[at..]; false (and the message noted) when it fails with IOException. */
    private boolean read(long pos, int n, ByteBuffer buf, byte[] into, int at) {
        buf.clear().limit(n);
        try {
            backend.read(pos, buf);
        } catch (IOException e) {
            noteEio(e);
            return false;
        }
        if (buf.position() != n) {
            throw new AssertionError("read of " + n + " bytes at " + pos + " filled " + buf.position());
        }
        buf.flip().get(into, at, n);
        return true;
    }

    /** EIO is fine, but it must say what failed, in one line (it is logged and may reach the client's log). */
    private void noteEio(IOException e) {
        String m = e.getMessage();
        if (m == null || m.chars().anyMatch(Character::isISOControl)) {
            throw new AssertionError("EIO needs a one-line message, got: " + m, e);
        }
        notes.eio = m;
    }

    private boolean chunkOk(long pos) {
        return pos < covered && s.ok[(int) (pos / chunk)];
    }

    /**
     * The extent walk of SEEK_DATA/SEEK_HOLE. Past an offset that fails with EIO it goes on in steps that
     * double from 512 bytes while the failures last, so that a damaged region costs few calls.
     */
    private List<Extent> walk() {
        long size = backend.size();
        List<Extent> out = new ArrayList<>();
        long deadline = System.nanoTime() + WALK_NANOS;
        long pos = 0;
        long step = 512;
        while (pos < size) {
            if (out.size() >= MAX_EXTENTS || System.nanoTime() > deadline) {
                notes.walkCut = true;
                break;
            }
            Extent e;
            try {
                e = backend.extentAt(pos);
            } catch (IOException ex) {
                noteEio(ex);
                if (!effect.any() && effect.guest().isEmpty()) {
                    throw new AssertionError("extentAt(" + pos + ") failed though the change cannot reach the disk: "
                            + ex.getMessage());
                }
                pos = (pos / step + 1) * step;
                step = Math.min(step * 2, 1L << 40);
                continue;
            }
            if (e.offset() != pos || e.length() <= 0 || e.end() > size) {
                throw new AssertionError("extentAt(" + pos + ") = " + e + " on a disk of " + size + " bytes");
            }
            out.add(e);
            pos = e.end();
            step = 512;
        }
        return out;
    }

    private void checkExtents(List<Extent> extents) {
        byte[] ref = reference.content();
        for (Extent e : extents) {
            if (!e.data()) {
                long end = Math.min(e.end(), covered);
                for (long from = e.offset(), to; from < end; from = to) {
                    to = Math.min(end, (from / chunk + 1) * chunk);
                    int n = (int) (to - from);
                    int nonZero = chunkOk(from) ? Arrays.mismatch(s.got, (int) from, (int) to, ZEROS, 0, n) : -1;
                    if (nonZero >= 0) {
                        throw new AssertionError("byte " + (from + nonZero) + " inside the hole " + e + " reads as "
                                + (s.got[(int) from + nonZero] & 0xFF));
                    }
                }
            }
            if (effect.any()) {
                continue;
            }
            for (Extent base : reference.extents()) {
                long from = Math.max(base.offset(), e.offset());
                long to = Math.min(base.end(), e.end());
                if (from < to && base.data() != e.data() && unaffectedByteIn(from, to)) {
                    throw new AssertionError("allocation of [" + from + ", " + to + ") changed from "
                            + (base.data() ? "data" : "hole") + " though the change cannot reach all of it ("
                            + e + ")");
                }
            }
            if (ref.length < e.end()) {
                throw new AssertionError("extent " + e + " past the reference size " + ref.length);
            }
        }
    }

    /** True when part of [from, to) lies outside every range the change may affect. */
    private boolean unaffectedByteIn(long from, long to) {
        long p = from;
        for (long[] g : effect.guest()) {
            if (g[1] <= p) {
                continue;
            }
            if (g[0] > p) {
                return true;
            }
            p = g[1];
            if (p >= to) {
                return false;
            }
        }
        return p < to;
    }

    /** Seeks from inside extents, as lseek does from any offset: same state, same end. */
    private void probeSeeks(List<Extent> extents) {
        for (int i = 0; i < SEEK_PROBES && !extents.isEmpty(); i++) {
            Extent e = extents.get(random.nextInt(extents.size()));
            long pos = e.offset() + (long) (random.nextDouble() * e.length());
            Extent again;
            try {
                again = backend.extentAt(pos);
            } catch (IOException ex) {
                continue; // the merge may run into a damaged region that the walk skipped
            }
            if (again.data() != e.data() || again.end() != e.end()) {
                throw new AssertionError("extentAt(" + pos + ") = " + again + " but the walk from " + e.offset()
                        + " gave " + e);
            }
        }
    }

    /** Pass 2: random unaligned reads must agree with pass 1 wherever both succeeded. */
    private void reread() {
        if (covered == 0) {
            return;
        }
        for (int i = 0; i < REREADS; i++) {
            int n = 1 + random.nextInt((int) Math.min(s.reread.length, covered));
            long pos = (long) (random.nextDouble() * (covered - n + 1));
            ByteBuffer buf = random.nextBoolean() ? s.direct : s.heap;
            if (!read(pos, n, buf, s.reread, 0)) {
                if (!effect.mayAffect(pos, pos + n)) {
                    throw new AssertionError("reread of [" + pos + ", +" + n
                            + ") failed though the change cannot reach it: " + notes.eio);
                }
                continue;
            }
            for (long from = pos, to; from < pos + n; from = to) {
                to = Math.min(pos + n, (from / chunk + 1) * chunk);
                int k = (int) (from - pos);
                int differ = chunkOk(from)
                        ? Arrays.mismatch(s.reread, k, k + (int) (to - from), s.got, (int) from, (int) to) : -1;
                if (differ >= 0) {
                    long p = from + differ;
                    throw new AssertionError("byte " + p + " read as " + (s.got[(int) p] & 0xFF) + " in ["
                            + (p / chunk * chunk) + ", +" + chunk + ") but as " + (s.reread[k + differ] & 0xFF)
                            + " in [" + pos + ", +" + n + ")");
                }
            }
        }
    }

    /** A disk larger than FULL_READ_LIMIT (only a mutated size gives one): random reads and the last bytes. */
    private void sampleBeyond() {
        long size = backend.size();
        if (size <= covered) {
            return;
        }
        notes.sampled = true;
        for (int i = 0; i <= SAMPLED_READS; i++) {
            int n = 1 + random.nextInt(1 << 16);
            long pos = i == SAMPLED_READS ? size - n : covered + (long) (random.nextDouble() * (size - covered - n));
            read(Math.max(0, pos), (int) Math.min(n, size), s.heap, s.reread, 0);
        }
    }

}
