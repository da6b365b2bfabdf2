package org.blockfuse.fuse.internal;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Protocol fuzzing of the request handler without a mount: a fixed budget of seeded random and
 * mutated requests (see {@link RequestFuzzer} for what each must satisfy). A new seed each run,
 * printed with the result and in every failure; rerun one with {@code -Dblockfuse.fuzz.seed=N},
 * a longer run with {@code -Dblockfuse.fuzz.requests=N}.
 */
class RequestFuzzTest {
    static final long REQUESTS = Long.getLong("blockfuse.fuzz.requests", 1_000_000);

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aMillionRandomAndMutatedRequestsGetAWellFormedAnswerOrAPreciseHalt() {
        long seed = Long.getLong("blockfuse.fuzz.seed", new SplittableRandom().nextLong());
        RequestFuzzer fuzzer = new RequestFuzzer(seed);
        long start = System.nanoTime();
        fuzzer.run(REQUESTS);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        System.out.println(fuzzer.summary() + " in " + millis + " ms");
        // the mix reaches every kind of outcome, or the fuzzer is not doing its job
        assertTrue(fuzzer.replies > REQUESTS / 10, fuzzer.summary());
        assertTrue(fuzzer.errors > REQUESTS / 20, fuzzer.summary());
        assertTrue(fuzzer.eio > REQUESTS / 1000, fuzzer.summary());
        assertTrue(fuzzer.violations > REQUESTS / 10, fuzzer.summary());
        assertTrue(fuzzer.legacy > REQUESTS / 3 && fuzzer.legacy < REQUESTS * 2 / 3, fuzzer.summary());
    }
}
