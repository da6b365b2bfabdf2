package org.blockfuse.fuse;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.BitSet;

import org.blockfuse.api.BlockBackend;

/** An in-memory image with a 4 KiB allocation map: the boundary stand-in for handler unit tests. */
final class MemoryBackend implements BlockBackend {
    static final int BLOCK = 4096;
    byte[] data;
    final BitSet allocated = new BitSet();
    final boolean writable;
    boolean failReads;
    int flushes;

    MemoryBackend(int size, boolean writable) {
        this.data = new byte[size];
        this.writable = writable;
    }

    @Override
    public long size() {
        return data.length;
    }

    @Override
    public boolean writable() {
        return writable;
    }

    @Override
    public long allocatedBytes() {
        return (long) allocated.cardinality() * BLOCK;
    }

    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws IOException {
        if (failReads) {
            throw new IOException("disk on fire");
        }
        dst.put(data, (int) offset, dst.remaining());
    }

    @Override
    public synchronized void write(long offset, ByteBuffer src) {
        int n = src.remaining();
        if (offset + n > data.length) {
            data = Arrays.copyOf(data, (int) offset + n);
        }
        src.get(data, (int) offset, n);
        allocated.set((int) (offset / BLOCK), (int) ((offset + n + BLOCK - 1) / BLOCK));
    }

    @Override
    public void flush() {
        flushes++;
    }

    @Override
    public synchronized void discard(long offset, long length) {
        Arrays.fill(data, (int) offset, (int) (offset + length), (byte) 0);
        allocated.clear((int) ((offset + BLOCK - 1) / BLOCK), (int) ((offset + length) / BLOCK));
    }

    @Override
    public synchronized void writeZeroes(long offset, long length) {
        Arrays.fill(data, (int) offset, (int) (offset + length), (byte) 0);
    }

    @Override
    public synchronized void allocate(long offset, long length) {
        allocated.set((int) (offset / BLOCK), (int) ((offset + length + BLOCK - 1) / BLOCK));
    }

    @Override
    public synchronized void resize(long newSize) {
        data = Arrays.copyOf(data, (int) newSize);
    }

    @Override
    public synchronized Extent extentAt(long offset) {
        int block = (int) (offset / BLOCK);
        boolean isData = allocated.get(block);
        int next = isData ? allocated.nextClearBit(block) : allocated.nextSetBit(block);
        long end = next < 0 ? data.length : Math.min(data.length, (long) next * BLOCK);
        return new Extent(offset, Math.max(end - offset, 1), isData);
    }

    @Override
    public void close() {
    }
}
