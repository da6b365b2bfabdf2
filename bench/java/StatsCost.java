import java.util.ArrayList;
import java.util.List;

import org.blockfuse.fuse.FuseAbi;
import org.blockfuse.fuse.RequestStats;

/**
 * What recording one request costs a transport thread (begin + end: counters, in flight, the
 * latency recorder, the clock), with 1 and 2 threads recording at once into one export's
 * statistics. Run by bench/stats-cost.sh; a figure for the README, not a test.
 */
public final class StatsCost {
    public static void main(String[] args) throws Exception {
        int n = 20_000_000;
        for (int threads : new int[] {1, 2}) {
            for (int round = 0; round < 3; round++) {
                RequestStats s = new RequestStats(true);
                List<Thread> all = new ArrayList<>();
                long[] took = new long[threads];
                for (int t = 0; t < threads; t++) {
                    int me = t;
                    all.add(new Thread(() -> {
                        long t0 = System.nanoTime();
                        for (int i = 0; i < n; i++) {
                            long at = System.nanoTime();
                            s.begin();
                            s.end(FuseAbi.Op.READ, 4096, 4096, at);
                        }
                        took[me] = System.nanoTime() - t0;
                    }));
                }
                all.forEach(Thread::start);
                for (Thread t : all) {
                    t.join();
                }
                long worst = 0;
                for (long x : took) {
                    worst = Math.max(worst, x);
                }
                System.out.printf("threads %d round %d: %.1f ns per request (arrival clock read included), %d recorded%n",
                        threads, round + 1, (double) worst / n, s.snapshot("x", 0, 0, List.of()).latency().count());
            }
        }
    }
}
