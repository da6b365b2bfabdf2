package org.blockfuse.export.internal;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackendFactory;
import org.blockfuse.api.ExportException;
import org.blockfuse.api.Availability;
import org.blockfuse.api.ConnectionDetails;
import org.blockfuse.api.ExportHealth;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportStatistics;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.ExportSpec;
import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.TransportInfo;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.nativeio.Libc;
import org.apache.karaf.features.BootFinished;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.InvalidSyntaxException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * Owns every export. Configurations drive it ({@link ExportConfiguration} forwards each factory
 * configuration); the shell goes through {@link ExportService}, which writes configurations.
 * All starts and stops run on one worker thread, so they never race each other.
 * Transports and backend factories are dynamic: when one leaves, its exports stop and wait.
 */
@Component(service = ExportService.class, immediate = true)
public final class ExportManager implements ExportService {
    private static final Logger LOG = LoggerFactory.getLogger(ExportManager.class);
    private static final long START_TIMEOUT_SECONDS = 60;
    private static final long STOP_TIMEOUT_SECONDS = FuseExport.DRAIN_MILLIS / 1000 + 30;

    private final TransportSelector transports = new TransportSelector();
    /** Who owns which option key (the export, each factory, each transport). */
    final OptionCatalog options = new OptionCatalog();
    private final Map<String, BlockBackendFactory> factories = new ConcurrentHashMap<>();
    /** Signalled on every lifecycle change and whenever an export is added or removed. */
    private final Object changes = new Object();
    /** By export name. */
    private final Map<String, ExportLifecycle> exports = new ConcurrentHashMap<>();
    /** Automatic restarts: at most this many within {@link #RESTART_WINDOW_NANOS}, backing off from 1 s. */
    static final int RESTART_LIMIT = 5;
    private static final long RESTART_WINDOW_NANOS = TimeUnit.MINUTES.toNanos(10);
    private static final long FIRST_RESTART_MILLIS = 1000;
    /** How often every live export checks that its mount is still there (a dead one is noticed within 2 s). */
    private static final long MONITOR_MILLIS = 500;

    /** Every start, stop and restart runs here, one at a time; delayed restarts are scheduled here too. */
    private final ScheduledThreadPoolExecutor worker = daemonScheduler("blockfuse-export-manager");
    /** Only looks: a dead mount is halted from here, and the halt is handled on {@link #worker}. */
    private final ScheduledThreadPoolExecutor monitor = daemonScheduler("blockfuse-export-monitor");

    private static ScheduledThreadPoolExecutor daemonScheduler(String name) {
        ScheduledThreadPoolExecutor s = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        });
        s.setExecuteExistingDelayedTasksAfterShutdownPolicy(false); // no restart after deactivation
        return s;
    }
    private volatile boolean active;

    @Reference
    private ConfigurationAdmin configAdmin;

    /**
     * Karaf registers BootFinished once its boot features are installed. Mounting before that
     * races the boot's bundle refresh, which can stop our bundles in the middle of a start.
     */
    @Reference
    private BootFinished bootFinished;

    private ConfigStore store;

    private BundleContext context;

    @Activate
    void activate(BundleContext context) {
        this.context = context;
        store = new ConfigStore(configAdmin);
        active = true;
        monitor.scheduleWithFixedDelay(this::checkMounts, MONITOR_MILLIS, MONITOR_MILLIS, TimeUnit.MILLISECONDS);
    }

    /** Statistics are folded and error counts sampled every 10th round (5 s). */
    private static final int SAMPLE_EVERY_ROUNDS = 10;
    private int monitorRounds; // monitor thread only

    /** Someone else's abort or unmount ends a connection without telling us: look, twice a second. */
    private void checkMounts() {
        java.util.Set<Integer> mounted;
        try {
            mounted = org.blockfuse.fuse.MountTable.anonymousMinors(); // once per round, not per export
        } catch (IOException | RuntimeException ex) {
            LOG.warn("mount check: cannot read the mount table: {}", ex.toString());
            return; // cannot tell; the next round will
        }
        boolean sample = ++monitorRounds % SAMPLE_EVERY_ROUNDS == 0;
        long now = System.nanoTime();
        for (ExportLifecycle e : exports.values()) {
            FuseExport l = e.live;
            if (l != null) {
                try {
                    l.checkMounted(mounted);
                } catch (RuntimeException ex) {
                    LOG.warn("{}: mount check failed: {}", e.spec.name(), ex.toString());
                }
            }
            if (sample) {
                e.sample(now);
            }
        }
    }

    /** While Karaf shuts down, a departing transport must not make exports remount on another one. */
    private boolean shuttingDown() {
        try {
            return context == null || context.getBundle(0).getState() == Bundle.STOPPING;
        } catch (IllegalStateException e) {
            return true;
        }
    }

    @Deactivate
    void deactivate() {
        active = false;
        monitor.shutdownNow();
        onWorker(() -> {
            stopAllAtOnce(new ArrayList<>(exports.values()));
            exports.clear();
            changed();
        });
        worker.shutdown();
    }

    /**
     * Stops every export in parallel: each may drain its clients for up to the grace period, so
     * one after another would make shutdown (and this bundle's deactivation) grow with the number
     * of busy exports. Bounded: a stop that outlives the grace periods is logged and left.
     */
    private void stopAllAtOnce(List<ExportLifecycle> all) {
        List<Thread> stoppers = new ArrayList<>();
        for (ExportLifecycle e : all) {
            Thread t = new Thread(() -> stop(e), "blockfuse-export-stop-" + e.spec.name());
            t.setDaemon(true);
            t.start();
            stoppers.add(t);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(STOP_TIMEOUT_SECONDS - 5);
        for (Thread t : stoppers) {
            try {
                t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                return;
            }
            if (t.isAlive()) {
                LOG.error("{} did not finish within {} s", t.getName(), STOP_TIMEOUT_SECONDS - 5);
            }
        }
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void bindTransport(FuseTransport t) {
        options.transportArrived(t);
        transports.add(t);
        worker.execute(() -> {
            startWaiting();
            upgradeLive(t);
        });
    }

    /**
     * Hot swap: exports on "auto" served by a lower-ranked transport move to {@code t} on their live
     * connection when {@code t} can join one (legacy to io_uring); the mount never goes away.
     */
    private void upgradeLive(FuseTransport t) {
        if (!active || !t.joinsLiveConnections() || !t.availability().available()) {
            return;
        }
        for (ExportLifecycle e : exports.values()) {
            if (e.live == null || !e.spec.transport().equals("auto") || !transports.shouldUpgrade(e.transport, t)) {
                continue;
            }
            try {
                switchTo(e, t, "transport " + t.name() + " arrived");
            } catch (IOException | RuntimeException ex) {
                LOG.warn("{}: staying on {}: {} could not join the live connection: {}", e.spec.name(), e.transport,
                        t.name(), ex.getMessage());
            }
        }
    }

    /**
     * Moves a live export to {@code to}: on its live connection when {@code to} can join one
     * (legacy to io_uring), else on a new connection mounted beneath the old one, which keeps
     * serving the files already open until they close or the export's drain-grace ends.
     */
    private void switchTo(ExportLifecycle e, FuseTransport to, String why) throws IOException {
        String from = e.transport;
        long started = System.nanoTime();
        if (to.joinsLiveConnections()) {
            e.live.join(to);
            e.switched(from, to.name(), why, "live on connection " + e.live.connectionId(), elapsedMillis(started));
        } else {
            FuseExport.Replacement r = e.live.replace(to, drainGraceMillis(e.spec));
            e.switched(from, to.name(), why, "new connection " + r.newConnection() + " mounted beneath connection "
                    + r.oldConnection() + ", which drains its open files", elapsedMillis(started));
        }
    }

    private static long elapsedMillis(long startedNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startedNanos);
    }

    static long drainGraceMillis(ExportSpec spec) {
        String v = spec.options().get("drain-grace");
        return v == null ? FuseExport.DRAIN_GRACE_MILLIS : TimeUnit.SECONDS.toMillis(Long.parseLong(v.trim()));
    }

    /**
     * A departing transport: exports on {@code auto} move to the best transport left, losslessly
     * (files already open finish on the old connection, which the departing transport keeps
     * serving); the others stop and wait for it to return. Returns only when the departing
     * transport runs no export's code any more (bounded by the drain grace), so its bundle can go.
     */
    void unbindTransport(FuseTransport t) {
        if (!transports.remove(t)) {
            return;
        }
        long bound = exports.values().stream().mapToLong(e -> drainGraceMillis(e.spec)).max().orElse(0) / 1000
                + STOP_TIMEOUT_SECONDS;
        onWorker(bound, () -> {
            List<ExportLifecycle> draining = new ArrayList<>();
            for (ExportLifecycle e : exports.values()) {
                if (e.live == null || !e.transport.equals(t.name())) {
                    continue;
                }
                FuseTransport next = shuttingDown() || !e.spec.transport().equals("auto") ? null
                        : transports.choose("auto", x -> { }).transport();
                if (next != null) {
                    try {
                        switchTo(e, next, "transport " + t.name() + " is going away");
                        draining.add(e);
                        continue;
                    } catch (IOException | RuntimeException ex) {
                        LOG.warn("{}: could not move to {} ({}); stopping the export", e.spec.name(), next.name(),
                                ex.getMessage());
                    }
                }
                LOG.info("{}: transport {} is going away; stopping the export", e.spec.name(), t.name());
                stop(e);
                e.moveTo(ExportLifecycle.WAITING, "transport " + t.name() + " went away");
            }
            for (ExportLifecycle e : draining) {
                awaitDrained(e);
            }
            if (!shuttingDown()) {
                startWaiting();
            }
        });
    }

    /** Waits for the export's replaced connections to drain, at most its drain-grace plus the abort grace. */
    private static void awaitDrained(ExportLifecycle e) {
        FuseExport l = e.live;
        try {
            if (l != null && !l.awaitDrained(drainGraceMillis(e.spec) + TimeUnit.SECONDS.toMillis(15))) {
                LOG.error("{}: a replaced connection did not finish draining in time", e.spec.name());
            }
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void bindFactory(BlockBackendFactory f) {
        factories.put(f.format(), f);
        worker.execute(this::startWaiting);
    }

    void unbindFactory(BlockBackendFactory f) {
        if (!factories.remove(f.format(), f)) {
            return;
        }
        onWorker(() -> {
            for (ExportLifecycle e : exports.values()) {
                if (e.live != null && e.spec.format().equals(f.format())) {
                    stop(e);
                    e.moveTo(ExportLifecycle.WAITING, "format " + f.format() + " went away");
                }
            }
        });
    }

    // ---- configuration side (called by ExportConfiguration) ----

    void configured(String pid, Map<String, Object> props) {
        String name = ExportSpecs.nameOf(pid, props);
        worker.execute(() -> {
            ExportLifecycle old = exports.get(name);
            if (old != null && !old.pid.equals(pid)) {
                LOG.error("export {}: configuration {} duplicates the name of {}; ignored", name, pid, old.pid);
                return;
            }
            ExportSpec spec;
            try {
                spec = ExportSpecs.fromProperties(name, props);
            } catch (ExportException e) {
                if (old != null) {
                    stop(old);
                    exports.remove(name);
                    changed();
                }
                ExportLifecycle bad = new ExportLifecycle(pid, new ExportSpec(name, Path.of(String.valueOf(props.get("image"))),
                        "?", Path.of(String.valueOf(props.get("mountpoint"))), false, false, "auto", "auto", Map.of()), changes);
                fail(bad, e.getMessage());
                exports.put(name, bad);
                changed();
                return;
            }
            if (old != null && old.spec.equals(spec) && old.live != null) {
                return; // only bookkeeping keys changed (e.g. the file watcher added its file name)
            }
            if (old != null) {
                stop(old);
                exports.remove(name);
            }
            ExportLifecycle entry = new ExportLifecycle(pid, spec, changes);
            exports.put(name, entry);
            changed();
            start(entry);
        });
    }

    void unconfigured(String pid) {
        onWorker(() -> {
            for (ExportLifecycle e : new ArrayList<>(exports.values())) {
                if (e.pid.equals(pid)) {
                    stop(e);
                    exports.remove(e.spec.name(), e);
                    changed();
                }
            }
        });
    }

    // ---- lifecycle on the worker thread ----

    private void startWaiting() {
        for (ExportLifecycle e : exports.values()) {
            if (e.is(ExportLifecycle.WAITING) && active && !shuttingDown()) {
                start(e);
            }
        }
    }

    /** Every line logged while the export is started or stopped names it (MDC key "export"). */
    private void start(ExportLifecycle e) {
        try (MDC.MDCCloseable named = MDC.putCloseable("export", e.spec.name())) {
            startNow(e);
        }
    }

    private void startNow(ExportLifecycle e) {
        ExportSpec spec = e.spec;
        e.moveTo(ExportLifecycle.STARTING, "");
        BlockBackendFactory factory = factories.get(spec.format());
        FuseTransport transport = chooseTransport(e);
        if (transport == null) {
            return;
        }
        if (factory == null) {
            waitFor(e, "format " + spec.format() + " is not installed");
            return;
        }
        try {
            ExportValidator.validate(spec, factory, formats(), transport, transports.names(), options);
            ExportValidator.checkClashes(spec, exports.values().stream()
                    .filter(other -> other != e && other.live != null).map(other -> other.spec).toList());
        } catch (ExportException ex) {
            fail(e, ex.getMessage());
            return;
        }
        BlockBackend backend;
        try {
            backend = factory.open(new BackendRequest(spec.image(), spec.writable(), spec.options()));
        } catch (IOException | RuntimeException | LinkageError ex) {
            fail(e, ex.getMessage());
            return;
        }
        boolean root = Libc.geteuid() == 0;
        boolean allowOther = spec.allowOther().equals("on") || (spec.allowOther().equals("auto") && root);
        if (!root && spec.allowOther().equals("auto")) {
            // an ordinary user mounts through fusermount3, which grants allow_other only with user_allow_other
            allowOther = FuseExport.unprivilegedAllowOther();
            if (!allowOther) {
                LOG.info("{}: allow-other auto: not asked for (running as uid {}, /etc/fuse.conf has no "
                        + "user_allow_other); only uid {} may open the file", spec.name(), Libc.geteuid(), Libc.geteuid());
            }
        }
        String passthroughMode = spec.options().getOrDefault("passthrough", "auto");
        String noPassthrough = passthroughMode.equals("off") ? null : Passthrough.whyNot(spec, backend, root);
        if (noPassthrough != null && passthroughMode.equals("on")) {
            closeQuietly(spec.name(), backend);
            fail(e, "passthrough=on: " + noPassthrough);
            return;
        }
        if (noPassthrough != null) {
            LOG.info("{}: FUSE passthrough not used: {}", spec.name(), noPassthrough);
        }
        boolean passthrough = noPassthrough == null && !passthroughMode.equals("off");
        ExportPolicy policy = new ExportPolicy(spec.writable(), spec.growable(), allowOther, Libc.getuid(), Libc.getgid(),
                passthrough, !spec.options().getOrDefault("fuse-cache", "direct").equals("page"));
        e.epoch++;
        try {
            e.live = FuseExport.start(spec.name(), backend, spec.mountpoint(), policy, spec.image(),
                    spec.options(), transport, (generation, reason) -> onWorkerLater(() -> halted(e, generation, reason)),
                    e.stats);
        } catch (IOException | RuntimeException | LinkageError ex) {
            fail(e, ex.getMessage());
            return;
        }
        if (passthrough && passthroughMode.equals("on") && !e.live.passthrough().startsWith("on")) {
            String why = e.live.passthrough();
            stop(e);
            fail(e, "passthrough=on: " + why.replaceFirst("^off: ", ""));
            return;
        }
        e.transport = transport.name();
        e.moveTo(ExportLifecycle.ACTIVE, "");
        String line = String.format("blockfuse: export '%s' mounted at %s (%s, %s, %s, %s via %s)", spec.name(),
                spec.mountpoint(), spec.image(), spec.format(), human(backend.size()),
                spec.writable() ? "read-write" : "read-only", e.live.session().describe() + " " + transport.name());
        LOG.info(line);
        System.out.println(line);
    }

    private FuseTransport chooseTransport(ExportLifecycle e) {
        TransportSelector.Choice c = transports.choose(e.spec.transport(), t -> LOG.info(
                "{}: transport {} is not available ({}); falling back", e.spec.name(), t.name(), t.availability().reason()));
        if (c.failReason() != null) {
            fail(e, c.failReason());
        } else if (c.waitReason() != null) {
            waitFor(e, c.waitReason());
        }
        return c.transport();
    }

    /**
     * A connection halted. Only the export's current connection counts: a late report from an
     * earlier generation (one already replaced or stopped) must not stop its successor.
     */
    private void halted(ExportLifecycle e, long generation, String reason) {
        FuseExport l = e.live;
        if (l == null || l.generation() != generation || exports.get(e.spec.name()) != e) {
            LOG.info("export {}: ignoring the halt of an earlier connection (generation {}): {}", e.spec.name(),
                    generation, reason);
            return;
        }
        stop(e);
        fail(e, "halted: " + reason);
        scheduleRestart(e);
    }

    /** restart = on-failure: start again after 1 s, 2 s, 4 s ..., at most {@link #RESTART_LIMIT} times in 10 minutes. */
    private void scheduleRestart(ExportLifecycle e) {
        if (!e.spec.options().getOrDefault("restart", "on-failure").equals("on-failure") || !active || shuttingDown()) {
            return;
        }
        long now = System.nanoTime();
        while (!e.restarts.isEmpty() && now - e.restarts.peekFirst() > RESTART_WINDOW_NANOS) {
            e.restarts.pollFirst();
        }
        String why = e.detail();
        if (e.restarts.size() >= RESTART_LIMIT) {
            e.explain(why + "; not restarting: " + RESTART_LIMIT + " restarts within 10 minutes"
                    + " (blockfuse:export-restart " + e.spec.name() + " to try again)");
            LOG.error("export {}: {}", e.spec.name(), e.detail());
            return;
        }
        long delay = FIRST_RESTART_MILLIS << e.restarts.size();
        e.restarts.addLast(now);
        e.restartsInWindow = e.restarts.size();
        e.explain(why + "; restart " + e.restarts.size() + "/" + RESTART_LIMIT + " in " + delay / 1000 + " s");
        LOG.warn("export {}: restarting in {} s (automatic restart {} of at most {} in 10 minutes)", e.spec.name(),
                delay / 1000, e.restarts.size(), RESTART_LIMIT);
        long epoch = e.epoch;
        worker.schedule(() -> {
            if (exports.get(e.spec.name()) != e || e.live != null || e.epoch != epoch || !active || shuttingDown()) {
                return; // removed, reconfigured, restarted by hand or shutting down meanwhile
            }
            start(e);
            if (e.is(ExportLifecycle.FAILED)) {
                scheduleRestart(e);
            }
        }, delay, TimeUnit.MILLISECONDS);
    }

    private void onWorkerLater(Runnable r) {
        try {
            worker.execute(r);
        } catch (java.util.concurrent.RejectedExecutionException ex) {
            // shutting down: deactivate() stops every export anyway
        }
    }

    /** Every line logged while the export is started or stopped names it (MDC key "export"). */
    private void stop(ExportLifecycle e) {
        try (MDC.MDCCloseable named = MDC.putCloseable("export", e.spec.name())) {
            stopNow(e);
        }
    }

    private void stopNow(ExportLifecycle e) {
        e.epoch++;
        FuseExport l = e.live;
        e.live = null;
        if (l != null) {
            e.moveTo(ExportLifecycle.STOPPING, "unmounting " + e.spec.mountpoint());
            l.close();
        }
    }

    private static void closeQuietly(String name, BlockBackend backend) {
        try {
            backend.close();
        } catch (IOException ex) {
            LOG.warn("{}: closing the image failed: {}", name, ex.toString());
        }
    }

    private static void fail(ExportLifecycle e, String reason) {
        e.moveTo(ExportLifecycle.FAILED, reason);
        LOG.error("export {}: {}", e.spec.name(), reason);
    }

    private static void waitFor(ExportLifecycle e, String reason) {
        e.moveTo(ExportLifecycle.WAITING, reason);
        LOG.warn("export {}: waiting: {}", e.spec.name(), reason);
    }

    private void onWorker(Runnable r) {
        onWorker(STOP_TIMEOUT_SECONDS, r);
    }

    private void onWorker(long seconds, Runnable r) {
        if (worker.isShutdown()) {
            return;
        }
        try {
            worker.submit(r).get(seconds, TimeUnit.SECONDS);
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException ex) {
            LOG.error("export manager task failed: {}", ex.toString());
        }
    }

    // ---- ExportService (the shell's side) ----

    @Override
    public ExportInfo add(ExportSpec spec) throws ExportException {
        FuseTransport transport = transports.get(spec.transport());
        ExportValidator.validate(spec, factories.get(spec.format()), formats(), transport, transports.names(), options);
        if (exports.containsKey(spec.name()) || findConfiguration(spec.name()).isPresent()) {
            throw new ExportException("an export named " + spec.name() + " already exists");
        }
        ExportValidator.checkClashes(spec, exports.values().stream().map(e -> e.spec).toList());
        ConfigStore.Stored stored = store.create(spec);
        ExportLifecycle entry = awaitSettled(spec.name());
        if (entry == null || !entry.is(ExportLifecycle.ACTIVE)) {
            String why = entry == null ? "it did not start within " + START_TIMEOUT_SECONDS + " s" : entry.detail();
            // the configuration itself too, not only the file: an export that fails within milliseconds
            // can lose the race with the file watcher, which then never learns the file is gone
            store.delete(stored.file(), stored.configuration() != null ? stored.configuration()
                    : findConfiguration(spec.name()).orElse(null));
            awaitGone(spec.name());
            throw new ExportException(why);
        }
        return entry.info();
    }

    /** Waits (bounded) until the export exists and has left "starting"; woken by every lifecycle change. */
    private ExportLifecycle awaitSettled(String name) throws ExportException {
        awaitChange(START_TIMEOUT_SECONDS, () -> {
            ExportLifecycle e = exports.get(name);
            return e != null && !e.is(ExportLifecycle.STARTING);
        });
        return exports.get(name);
    }

    private void awaitGone(String name) throws ExportException {
        if (!awaitChange(STOP_TIMEOUT_SECONDS, () -> !exports.containsKey(name))) {
            throw new ExportException("export " + name + " did not stop within " + STOP_TIMEOUT_SECONDS + " s");
        }
    }

    /** Waits on the lifecycles' change signal until {@code done} holds or the time is up. */
    private boolean awaitChange(long seconds, java.util.function.BooleanSupplier done) throws ExportException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        synchronized (changes) {
            while (!done.getAsBoolean()) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    return false;
                }
                try {
                    changes.wait(left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new ExportException("interrupted");
                }
            }
            return true;
        }
    }

    /** Tells waiters that the set of exports changed (an export added or removed). */
    private void changed() {
        synchronized (changes) {
            changes.notifyAll();
        }
    }

    @Override
    public void remove(String name) throws ExportException {
        Optional<Configuration> c = findConfiguration(name);
        if (c.isEmpty()) {
            if (!exports.containsKey(name)) {
                throw new ExportException("no export named " + name);
            }
            unconfigured(exports.get(name).pid);
        } else {
            Object file = c.get().getProperties() == null ? null : c.get().getProperties().get(ExportSpecs.FILEINSTALL_FILENAME);
            store.delete(file == null ? null : file.toString(), c.get());
        }
        awaitGone(name);
    }

    @Override
    public ExportInfo restart(String name) throws ExportException {
        java.util.concurrent.Future<ExportInfo> f = worker.submit(() -> {
            ExportLifecycle e = exports.get(name);
            if (e == null) {
                throw new ExportException("no export named " + name);
            }
            if (e.spec.format().equals("?")) {
                throw new ExportException("export " + name + " cannot start: " + e.detail());
            }
            LOG.info("export {}: restarting on request", name);
            stop(e);
            e.restarts.clear();
            e.restartsInWindow = 0;
            start(e);
            if (!e.is(ExportLifecycle.ACTIVE)) {
                throw new ExportException("export " + name + " did not restart: " + e.detail());
            }
            return e.info();
        });
        return await(f, "export " + name + " did not restart");
    }

    /** The result of a shell request run on the worker, bounded; its refusal passes through as it is. */
    private static <T> T await(java.util.concurrent.Future<T> f, String late) throws ExportException {
        long seconds = STOP_TIMEOUT_SECONDS + START_TIMEOUT_SECONDS;
        try {
            return f.get(seconds, TimeUnit.SECONDS);
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            throw new ExportException("interrupted");
        } catch (TimeoutException ex) {
            throw new ExportException(late + " within " + seconds + " s");
        } catch (ExecutionException ex) {
            Throwable c = ex.getCause();
            throw c instanceof ExportException ? (ExportException) c : new ExportException(String.valueOf(c));
        }
    }

    @Override
    public String switchTransport(String name, String transport) throws ExportException {
        java.util.concurrent.Future<String> f = worker.submit(() -> {
            ExportLifecycle e = exports.get(name);
            if (e == null) {
                throw new ExportException("no export named " + name);
            }
            if (e.live == null) {
                throw new ExportException("export " + name + " is " + e.state() + ", not active; nothing to switch");
            }
            FuseTransport t = transports.get(transport);
            if (t == null) {
                throw new ExportException("transport " + transport + " is not installed (installed: "
                        + String.join(", ", new java.util.TreeSet<>(transports.names())) + ")");
            }
            if (!t.availability().available()) {
                throw new ExportException("transport " + transport + " is not available here: " + t.availability().reason());
            }
            if (e.transport.equals(transport)) {
                throw new ExportException("export " + name + " is already served by " + transport);
            }
            try {
                switchTo(e, t, "transport-switch");
            } catch (IOException ex) {
                throw new ExportException("export " + name + " stays on " + e.transport + ": " + ex.getMessage(), ex);
            }
            return e.switches().get(e.switches().size() - 1).toString();
        });
        return await(f, "export " + name + ": the switch did not finish");
    }

    @Override
    public List<String> switches(String name) {
        ExportLifecycle e = exports.get(name);
        return e == null ? List.of() : e.switches().stream().map(ExportLifecycle.Switch::toString).collect(Collectors.toList());
    }

    private Optional<Configuration> findConfiguration(String name) throws ExportException {
        try {
            Configuration[] all = configAdmin.listConfigurations("(service.factoryPid=" + FACTORY_PID + ")");
            if (all != null) {
                for (Configuration c : all) {
                    if (ExportSpecs.nameOf(c.getPid(), ExportSpecs.toMap(c.getProperties())).equals(name)) {
                        return Optional.of(c);
                    }
                }
            }
            return Optional.empty();
        } catch (IOException | InvalidSyntaxException e) {
            throw new ExportException("cannot read configurations: " + e.getMessage(), e);
        }
    }

    @Override
    public List<ExportInfo> list() {
        return exports.values().stream().map(ExportLifecycle::info)
                .sorted(Comparator.comparing(ExportInfo::name)).collect(Collectors.toList());
    }

    @Override
    public List<String> history(String name) {
        ExportLifecycle e = exports.get(name);
        if (e == null) {
            return List.of();
        }
        return e.history().stream().map(c -> c.at() + "  " + (c.from() == null ? "" : c.from() + " -> ") + c.to()
                + (c.why().isEmpty() ? "" : "  " + c.why())).collect(Collectors.toList());
    }

    @Override
    public Optional<ExportInfo> get(String name) {
        return Optional.ofNullable(exports.get(name)).map(ExportLifecycle::info);
    }

    @Override
    public Optional<ExportStatistics> statistics(String name) {
        ExportLifecycle e = exports.get(name);
        if (e == null) {
            return Optional.empty();
        }
        // not active (or stopped under us): what was recorded, without queues
        return fromLive(name, FuseExport::statistics).or(() -> Optional.of(e.stats.snapshot(name, 0, 0, List.of())));
    }

    @Override
    public Optional<ConnectionDetails> details(String name) {
        return fromLive(name, FuseExport::details);
    }

    @Override
    public Optional<OpenFilesInfo> openFiles(String name) {
        return fromLive(name, l -> {
            int n = l.openFiles();
            return new OpenFilesInfo(n, n == 0 && l.draining() == 0 ? "" : l.openBy());
        });
    }

    /** {@code read} of the export's live connection; empty when it is not active or stops while read. */
    private <T> Optional<T> fromLive(String name, java.util.function.Function<FuseExport, T> read) {
        ExportLifecycle e = exports.get(name);
        FuseExport l = e == null ? null : e.live;
        if (l == null) {
            return Optional.empty();
        }
        try {
            return Optional.of(read.apply(l));
        } catch (RuntimeException ex) {
            return Optional.empty(); // stopped under us
        }
    }

    @Override
    public long drainMillis() {
        return FuseExport.DRAIN_MILLIS;
    }

    @Override
    public List<ExportHealth> health() {
        return exports.values().stream().sorted(Comparator.comparing(e -> e.spec.name()))
                .map(e -> new ExportHealth(e.spec.name(), e.state(), e.detail(), e.transport, e.ioErrorsLastMinute(),
                        e.restartsInWindow, RESTART_LIMIT))
                .collect(Collectors.toList());
    }

    @Override
    public Availability passthroughSupport() {
        return Passthrough.support(Libc.geteuid() == 0);
    }

    @Override
    public List<TransportInfo> transports() {
        return transports.describe();
    }

    java.util.Collection<BlockBackendFactory> installedFactories() {
        return List.copyOf(factories.values());
    }

    @Override
    public List<String> formats() {
        return factories.keySet().stream().sorted().collect(Collectors.toList());
    }

    static String human(long bytes) {
        if (bytes < 0) {
            return "-";
        }
        String[] units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format("%.1f %s", v, units[u]);
    }
}
