package org.blockfuse.qcow2.internal;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackend.Extent;

/**
 * SEEK_DATA / SEEK_HOLE answered from {@link BlockBackend#extentAt} exactly as the FUSE export's lseek
 * handler does (bundles/fuse ExportHandler.lseek): walk extents from the offset until one has the wanted
 * state; the end of the disk is an implicit hole. {@link #NONE} stands for ENXIO.
 */
final class SeekProbe {

    static final long NONE = -1;

    private SeekProbe() {
    }

    static long seekData(BlockBackend backend, long offset) throws IOException {
        return seek(backend, offset, true);
    }

    static long seekHole(BlockBackend backend, long offset) throws IOException {
        return seek(backend, offset, false);
    }

    private static long seek(BlockBackend backend, long offset, boolean wantData) throws IOException {
        long size = backend.size();
        if (offset < 0 || offset >= size) {
            return NONE;
        }
        long pos = offset;
        while (pos < size) {
            Extent e = backend.extentAt(pos);
            if (e.length() <= 0 || e.offset() != pos) {
                throw new AssertionError("bad extent " + e + " asked at " + pos);
            }
            if (e.data() == wantData) {
                return pos;
            }
            pos = e.end();
        }
        return wantData ? NONE : size;
    }

    /** The holes a hole-aware copier sees: alternate SEEK_DATA and SEEK_HOLE from 0 to the end. */
    static List<Extent> holes(BlockBackend backend) throws IOException {
        List<Extent> holes = new ArrayList<>();
        long size = backend.size();
        long pos = 0;
        while (pos < size) {
            long data = seekData(backend, pos);
            long holeEnd = data == NONE ? size : data;
            if (holeEnd > pos) {
                holes.add(new Extent(pos, holeEnd - pos, false));
            }
            if (data == NONE) {
                break;
            }
            pos = seekHole(backend, data);
        }
        return holes;
    }
}
