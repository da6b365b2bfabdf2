package org.blockfuse.itests;

import static org.ops4j.pax.exam.CoreOptions.systemProperty;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.configureConsole;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.editConfigurationFilePut;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.karafDistributionConfiguration;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.logLevel;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.security.PrivilegedActionException;
import java.security.PrivilegedExceptionAction;
import java.util.concurrent.TimeUnit;

import javax.inject.Inject;
import javax.security.auth.Subject;

import org.apache.karaf.jaas.boot.principal.RolePrincipal;

import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.api.console.SessionFactory;
import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.TransportInfo;
import org.osgi.framework.BundleContext;
import org.osgi.framework.FrameworkUtil;
import org.osgi.framework.ServiceReference;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.karaf.options.LogLevelOption.LogLevel;

/** What every itest shares: the container set-up, running shell commands, waiting, running tools. */
public abstract class KarafSupport {
    /** Where the shipped demo export is mounted: inside the container's own data folder (read in the container). */
    static final String DEMO_MOUNT = System.getProperty("karaf.data") + "/blockfuse/demo.img";

    /** The roles of the distribution's admin user; shell commands run as that user (the command ACLs see them). */
    private static final List<String> ADMIN_ROLES = List.of("admin", "manager", "viewer", "systembundles", "ssh");

    @Inject
    protected SessionFactory sessionFactory;

    /** The current export service (looked up each time: a test may restart its bundle). */
    protected ExportService exports() throws InterruptedException {
        BundleContext bc = FrameworkUtil.getBundle(KarafSupport.class).getBundleContext();
        for (int i = 0; i < 300; i++) {
            ServiceReference<ExportService> ref = bc.getServiceReference(ExportService.class);
            if (ref != null) {
                ExportService s = bc.getService(ref);
                if (s != null) {
                    return s;
                }
            }
            Thread.sleep(100);
        }
        throw new AssertionError("no ExportService");
    }

    protected static Option[] baseConfig() {
        String dist = new File(System.getProperty("blockfuse.dist")).toURI().toString();
        String localRepo = System.getProperty("blockfuse.local.repo");
        String examRepo = new File(System.getProperty("blockfuse.exam.repo")).toURI().toString();
        Option keep = Boolean.getBoolean("blockfuse.keep.runtime")
                ? org.ops4j.pax.exam.karaf.options.KarafDistributionOption.keepRuntimeFolder()
                : org.ops4j.pax.exam.CoreOptions.systemProperty("blockfuse.keep.runtime").value("false");
        return new Option[] {
            keep,
            karafDistributionConfiguration().frameworkUrl(dist).name("blockfuse").karafVersion("4.4.10")
                    .unpackDirectory(new File("target/exam")).useDeployFolder(false),
            configureConsole().ignoreLocalConsole(),
            logLevel(LogLevel.INFO),
            editConfigurationFilePut("etc/org.apache.karaf.shell.cfg", "sshPort", Integer.toString(freePort())),
            editConfigurationFilePut("etc/org.apache.karaf.management.cfg", "rmiRegistryPort", Integer.toString(freePort())),
            editConfigurationFilePut("etc/org.apache.karaf.management.cfg", "rmiServerPort", Integer.toString(freePort())),
            // offline: bundles come from the build's local repository and the pre-fetched exam repository
            editConfigurationFilePut("etc/org.ops4j.pax.url.mvn.cfg", "org.ops4j.pax.url.mvn.localRepository", localRepo),
            editConfigurationFilePut("etc/org.ops4j.pax.url.mvn.cfg", "org.ops4j.pax.url.mvn.repositories",
                    examRepo + "@id=exam"),
            editConfigurationFilePut("etc/org.ops4j.pax.url.mvn.cfg", "org.ops4j.pax.url.mvn.defaultRepositories",
                    "file:${karaf.home}/${karaf.default.repository}@id=system.repository@snapshots,"
                            + "file:${karaf.data}/kar@id=kar.repository@multiple@snapshots," + examRepo + "@id=exam@snapshots"),
            // The distribution's boot features as one stage of their own, so pax-exam's "exam" feature
            // (which it appends) is a second stage: its probe bundle is then installed after our boot
            // deployment has finished, never while Karaf's deployer is resolving (that race failed a
            // run now and then with "Bundle cannot be installed: Resolver hook prevented resolution").
            editConfigurationFilePut("etc/org.apache.karaf.features.cfg", "featuresBoot", "(" + distributionBootFeatures() + ")"),
            systemProperty("blockfuse.work").value(System.getProperty("blockfuse.work")),
            systemProperty("blockfuse.tests.lenient").value(System.getProperty("blockfuse.tests.lenient", "false")),
        };
    }

    /** featuresBoot as the built distribution ships it (karaf-dist is built before the itests). */
    private static String distributionBootFeatures() {
        Path cfg = Path.of(System.getProperty("blockfuse.dist.features"));
        try {
            for (String line : Files.readAllLines(cfg)) {
                if (line.startsWith("featuresBoot")) {
                    String boot = line.substring(line.indexOf('=') + 1).trim();
                    if (boot.isEmpty() || boot.endsWith("\\")) {
                        throw new IllegalStateException("unexpected featuresBoot line in " + cfg + ": " + line);
                    }
                    return boot;
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + cfg.toAbsolutePath() + ": " + e, e);
        }
        throw new IllegalStateException("no featuresBoot in " + cfg.toAbsolutePath());
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Runs a shell command as the admin user would (the command ACLs apply: a session without a user
     * may run nothing); returns its output or throws with the command's error.
     */
    protected String run(String command) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(out, true, StandardCharsets.UTF_8);
        Subject admin = new Subject();
        ADMIN_ROLES.forEach(role -> admin.getPrincipals().add(new RolePrincipal(role)));
        Exception last = null;
        for (int attempt = 0; attempt < 50; attempt++) { // commands register asynchronously after boot
            try (Session s = sessionFactory.create(System.in, ps, ps)) {
                try {
                    Subject.doAs(admin, (PrivilegedExceptionAction<Object>) () -> s.execute(command));
                } catch (PrivilegedActionException e) {
                    throw e.getException();
                }
                ps.flush();
                return out.toString(StandardCharsets.UTF_8);
            } catch (Exception e) {
                if (e.getMessage() == null || !e.getMessage().contains("Command not found")) {
                    throw e;
                }
                last = e;
                Thread.sleep(200);
            }
        }
        throw last;
    }

    /** Runs a shell command that must fail; returns its error message. */
    protected String fails(String command) throws Exception {
        try {
            String out = run(command);
            throw new AssertionError("expected '" + command + "' to fail, it printed: " + out);
        } catch (AssertionError e) {
            throw e;
        } catch (Exception e) {
            return e.getMessage();
        }
    }

    protected ExportInfo awaitState(String name, String state, long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            ExportInfo i = exports().get(name).orElse(null);
            if (i != null && i.state().equals(state)) {
                return i;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("export " + name + " did not become " + state + ": " + exports().get(name));
    }

    protected void awaitGone(String name, long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (exports().get(name).isPresent()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("export " + name + " is still there: " + exports().get(name));
            }
            Thread.sleep(100);
        }
    }

    /** The available transports: every functional test runs on each. */
    protected List<String> transports() throws InterruptedException {
        List<String> names = new ArrayList<>();
        for (TransportInfo t : exports().transports()) {
            if (t.available()) {
                names.add(t.name());
            } else if (!Boolean.getBoolean("blockfuse.tests.lenient")) {
                // strict run: every transport must be tested, a missing kernel feature fails
                throw new AssertionError("missing capability: transport " + t.name() + " is unavailable: " + t.reason()
                        + " (run with -Dblockfuse.tests.lenient=true to test only the others)");
            }
        }
        return names;
    }

    /** A fresh, empty folder for one test (left-overs of an earlier, interrupted run are removed). */
    protected static Path workDir(String name) throws IOException {
        Path d = Path.of(System.getProperty("blockfuse.work", "/tmp/blockfuse-itest")).resolve(name);
        if (Files.exists(d)) {
            try (var walk = Files.walk(d)) {
                for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toArray(Path[]::new)) {
                    if (!isMounted(p)) {
                        Files.deleteIfExists(p);
                    }
                }
            }
        }
        Files.createDirectories(d);
        return d;
    }

    /** Runs a tool (fio, fallocate, qemu-img) and returns its output; fails on a non-zero exit. */
    protected static String exec(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " timed out");
        }
        if (p.exitValue() != 0) {
            throw new AssertionError(String.join(" ", command) + " exited " + p.exitValue() + ":\n" + out);
        }
        return out;
    }

    /** The FUSE connection number of the mount at {@code p} (the device minor in mountinfo), or -1. */
    protected static int connectionOf(Path p) throws IOException {
        String want = " " + p.toAbsolutePath() + " ";
        int found = -1;
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            if (line.contains(want)) {
                found = Integer.parseInt(line.split(" ")[2].split(":")[1]); // the last one is on top
            }
        }
        return found;
    }

    protected ExportInfo awaitTransport(String name, String transport, long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            ExportInfo i = exports().get(name).orElse(null);
            if (i != null && i.state().equals("active") && i.transport().startsWith(transport)) {
                return i;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("export " + name + " is not active on " + transport + ": " + exports().get(name));
    }

    protected static boolean isMounted(Path p) throws IOException {
        String want = " " + p.toAbsolutePath() + " ";
        return Files.readAllLines(Path.of("/proc/self/mounts")).stream().anyMatch(l -> l.contains(want));
    }
}
