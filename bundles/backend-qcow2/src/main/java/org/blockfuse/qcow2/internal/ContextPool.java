package org.blockfuse.qcow2.internal;

import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Consumer;

/**
 * A small lock-free pool of native (de)compression contexts. Unlike a linked queue it allocates nothing
 * when a context is borrowed or returned; contexts beyond its capacity are closed when returned.
 */
final class ContextPool<T> {

    private final AtomicReferenceArray<T> slots;
    private final Consumer<T> closer;

    ContextPool(int capacity, Consumer<T> closer) {
        this.slots = new AtomicReferenceArray<>(capacity);
        this.closer = closer;
    }

    static int defaultCapacity() {
        return Math.max(4, 2 * Runtime.getRuntime().availableProcessors());
    }

    /** An idle context, or null when none is pooled. */
    T poll() {
        for (int i = 0, n = slots.length(); i < n; i++) {
            T t = slots.get(i);
            if (t != null && slots.compareAndSet(i, t, null)) {
                return t;
            }
        }
        return null;
    }

    /** Returns a context to the pool, closing it when the pool is full. */
    void offer(T t) {
        for (int i = 0, n = slots.length(); i < n; i++) {
            if (slots.get(i) == null && slots.compareAndSet(i, null, t)) {
                return;
            }
        }
        closer.accept(t);
    }

    /** Closes every pooled context. */
    void close() {
        for (int i = 0, n = slots.length(); i < n; i++) {
            T t = slots.getAndSet(i, null);
            if (t != null) {
                closer.accept(t);
            }
        }
    }
}
