package org.blockfuse.management.internal;

import java.lang.management.ManagementFactory;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

import javax.management.JMException;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import javax.management.StandardMBean;

import org.blockfuse.api.ExportInfo;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.TransportInfo;
import org.blockfuse.management.ExportMXBean;
import org.blockfuse.management.ExportsMXBean;
import org.blockfuse.management.TransportMXBean;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps one MXBean per export and per transport in the platform MBeanServer, which Karaf's JMX
 * connector serves on localhost behind its ACL ({@code etc/jmx.acl.org.blockfuse.cfg}). Exports
 * and transports come and go (configurations, bundles), so the set is brought up to date every
 * second; every attribute is read from the export service when asked, never cached.
 */
@Component(immediate = true)
public final class MBeanRegistrar {
    private static final Logger LOG = LoggerFactory.getLogger(MBeanRegistrar.class);
    static final String DOMAIN = "org.blockfuse";
    private static final long SYNC_MILLIS = 1000;

    @Reference
    private ExportService service;

    private final MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    private final Map<ObjectName, Object> registered = new HashMap<>(); // guarded by this
    private ScheduledThreadPoolExecutor timer;

    @Activate
    void activate() throws JMException {
        register(new ObjectName(DOMAIN + ":type=exports"), new StandardMBean(new ExportsBean(service), ExportsMXBean.class, true));
        sync();
        timer = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "blockfuse-jmx");
            t.setDaemon(true);
            return t;
        });
        timer.scheduleWithFixedDelay(this::syncQuietly, SYNC_MILLIS, SYNC_MILLIS, TimeUnit.MILLISECONDS);
    }

    @Deactivate
    synchronized void deactivate() throws InterruptedException {
        timer.shutdownNow();
        timer.awaitTermination(5, TimeUnit.SECONDS);
        for (ObjectName n : Set.copyOf(registered.keySet())) {
            unregister(n);
        }
    }

    private void syncQuietly() {
        try {
            sync();
        } catch (RuntimeException | JMException e) {
            LOG.warn("JMX: cannot bring blockfuse's MBeans up to date: {}", e.toString());
        }
    }

    /** Registers the MBeans of new exports and transports and drops those of departed ones. */
    synchronized void sync() throws JMException {
        Set<ObjectName> wanted = new HashSet<>();
        wanted.add(new ObjectName(DOMAIN + ":type=exports"));
        for (ExportInfo e : service.list()) {
            ObjectName n = name("export", e.name());
            wanted.add(n);
            if (!registered.containsKey(n)) {
                register(n, new StandardMBean(new ExportBean(service, e.name()), ExportMXBean.class, true));
            }
        }
        for (TransportInfo t : service.transports()) {
            ObjectName n = name("transport", t.name());
            wanted.add(n);
            if (!registered.containsKey(n)) {
                register(n, new StandardMBean(new TransportBean(service, t.name()), TransportMXBean.class, true));
            }
        }
        for (ObjectName n : Set.copyOf(registered.keySet())) {
            if (!wanted.contains(n)) {
                unregister(n);
            }
        }
    }

    /** Export and transport names are [A-Za-z0-9_.-] (the validator's rule), so they need no quoting. */
    static ObjectName name(String type, String name) throws JMException {
        String value = name.matches("[A-Za-z0-9_.-]+") ? name : ObjectName.quote(name);
        return new ObjectName(DOMAIN + ":type=" + type + ",name=" + value);
    }

    private void register(ObjectName n, Object bean) throws JMException {
        if (server.isRegistered(n)) {
            server.unregisterMBean(n); // left by an earlier instance of this bundle that could not clean up
        }
        server.registerMBean(bean, n);
        registered.put(n, bean);
    }

    private void unregister(ObjectName n) {
        registered.remove(n);
        try {
            server.unregisterMBean(n);
        } catch (JMException e) {
            LOG.debug("JMX: {} was already gone: {}", n, e.toString());
        }
    }
}
