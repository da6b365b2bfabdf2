package org.blockfuse.fuse.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.BitSet;

import org.blockfuse.api.BlockBackend;

/**
 * An in-memory image with a 4 KiB allocation map: the boundary stand-in for handler unit tests.
 * The image is the first {@link #size()} bytes of {@link #data}; within its capacity it grows and
 * shrinks without allocating (the fuzz test measures the handler's allocations through it).
 */
final class MemoryBackend implements BlockBackend {
    static final int BLOCK = 4096;
    byte[] data;
    private int size;
    final BitSet allocated;
    final boolean writable;
    boolean failReads;
    /** Stands in for a bug: reads throw an unchecked exception. */
    boolean bugOnRead;
    int flushes;

    MemoryBackend(int size, boolean writable) {
        this(size, size, writable);
    }

    MemoryBackend(int size, int capacity, boolean writable) {
        this.data = new byte[Math.max(size, capacity)];
        this.size = size;
        this.allocated = new BitSet(data.length / BLOCK + 1);
        this.writable = writable;
    }

    int capacity() {
        return data.length;
    }

    @Override
    public synchronized long size() {
        return size;
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
        if (bugOnRead) {
            throw new IllegalStateException("a bug");
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
        size = (int) Math.max(size, offset + n);
        allocated.set((int) (offset / BLOCK), (int) ((offset + n + BLOCK - 1) / BLOCK));
    }

    @Override
    public void flush() {
        flushes++;
    }

    @Override
    public synchronized void discard(long offset, long length) {
        Arrays.fill(data, (int) offset, (int) (offset + length), (byte) 0);
        int from = (int) ((offset + BLOCK - 1) / BLOCK); // only whole blocks become holes
        int to = (int) ((offset + length) / BLOCK);
        if (from < to) {
            allocated.clear(from, to);
        }
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
        if (newSize > data.length) {
            data = Arrays.copyOf(data, (int) newSize);
        } else if (newSize < size) {
            Arrays.fill(data, (int) newSize, size, (byte) 0); // what grows back reads as zeros
            allocated.clear((int) ((newSize + BLOCK - 1) / BLOCK), data.length / BLOCK + 1);
        }
        size = (int) newSize;
    }

    @Override
    public synchronized Extent extentAt(long offset) {
        int block = (int) (offset / BLOCK);
        boolean isData = allocated.get(block);
        int next = isData ? allocated.nextClearBit(block) : allocated.nextSetBit(block);
        long end = next < 0 ? size : Math.min(size, (long) next * BLOCK);
        return new Extent(offset, Math.max(end - offset, 1), isData);
    }

    @Override
    public void close() {
    }
}
