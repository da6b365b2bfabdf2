package org.blockfuse.itests;

import static org.junit.Assert.*;

import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * The shell of the real distribution is no door (one boot for every check): it listens on the
 * loopback interface only, no well-known password logs in, root's bin/client logs in as admin
 * with the password generated on first start, and a viewer may look but not change anything.
 */
public class DistributionSecurityIT {
    private Distribution dist;

    @Before
    public void unpack() throws Exception {
        dist = Distribution.unpack("dist-security");
    }

    @After
    public void stopEverything() throws Exception {
        dist.close();
    }

    @Test
    public void onlyRootsAdminAndViewersLogInAndViewersOnlyLook() throws Exception {
        Properties shipped = dist.users();
        assertTrue("the shipped etc/users.properties has no user, so no password: " + shipped.stringPropertyNames(),
                shipped.stringPropertyNames().stream().allMatch(name -> name.startsWith("_g_:")));

        dist.start(); // bin/start, then bin/client with no -u/-p: it logs in as admin

        // the generated password: root's only, long, and it works
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dist.usersFile())));
        assertEquals("root", Files.getOwner(dist.usersFile()).getName());
        String password = dist.adminPassword();
        assertTrue(password, password.matches("[0-9a-f]{48}"));
        assertTrue(dist.clientAs("admin", password, "blockfuse:export-list").ok());

        // Karaf's well-known password, and a wrong one, are refused at login
        for (String[] login : List.of(new String[] { "karaf", "karaf" }, new String[] { "admin", "karaf" })) {
            Distribution.Result r = dist.clientAs(login[0], login[1], "blockfuse:export-list");
            assertNotEquals(login[0] + "/" + login[1] + " logged in: " + r.output(), 0, r.exit());
            assertTrue(r.output(), r.output().contains("No more authentication methods available"));
        }

        // ssh and JMX (RMI registry and server) listen on the loopback interface only
        for (int port : List.of(dist.sshPort, dist.rmiRegistryPort, dist.rmiServerPort)) {
            List<InetAddress> bound = Distribution.listenAddresses(port);
            assertFalse("nothing listens on port " + port, bound.isEmpty());
            assertTrue("port " + port + " listens on " + bound, bound.stream().allMatch(InetAddress::isLoopbackAddress));
        }

        // a viewer: lists, but may not add or remove exports, nor read files through the shell
        byte[] secret = new byte[16];
        new SecureRandom().nextBytes(secret);
        String viewerPassword = HexFormat.of().formatHex(secret);
        Files.writeString(dist.usersFile(), "viewer = " + viewerPassword + ",_g_:viewergroup\n", StandardOpenOption.APPEND);
        assertEquals("appending a user keeps the file root's only",
                "rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dist.usersFile())));

        Distribution.Result list = dist.clientAs("viewer", viewerPassword, "blockfuse:export-list --no-format");
        assertTrue(list.output(), list.ok());
        assertTrue(list.output(), list.output().contains(dist.demoMount().toString()));
        assertTrue(dist.clientAs("viewer", viewerPassword, "blockfuse:transport-list").ok());

        Path image = dist.work.resolve("viewer.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        Path mount = dist.work.resolve("viewer.img");
        dist.unmountOnClose(mount);
        Distribution.Result add = dist.clientAs("viewer", viewerPassword, "blockfuse:export-add v " + image + " " + mount);
        assertNotEquals(add.output(), 0, add.exit());
        assertTrue(add.output(), add.output().contains("Insufficient credentials"));
        assertFalse(Distribution.mounted(mount));
        assertFalse(Files.exists(dist.home.resolve("etc/org.blockfuse.export-v.cfg")));

        Distribution.Result remove = dist.clientAs("viewer", viewerPassword, "blockfuse:export-remove demo");
        assertTrue(remove.output(), remove.output().contains("Insufficient credentials"));
        assertTrue("the demo export is still there", Distribution.mounted(dist.demoMount()));

        // the read-only commands of operations are a viewer's too
        for (String cmd : List.of("blockfuse:status --no-format", "blockfuse:export-stats --no-format",
                "blockfuse:export-info --no-format demo")) {
            Distribution.Result r = dist.clientAs("viewer", viewerPassword, cmd);
            assertTrue(cmd + ": " + r.output(), r.ok());
            assertTrue(cmd + ": " + r.output(), r.output().contains("demo"));
        }

        // JMX on localhost: a viewer reads blockfuse's attributes but may invoke no operation; admin may
        JMXServiceURL url = new JMXServiceURL("service:jmx:rmi://127.0.0.1:" + dist.rmiServerPort + "/jndi/rmi://127.0.0.1:"
                + dist.rmiRegistryPort + "/karaf-root");
        ObjectName demo = new ObjectName("org.blockfuse:type=export,name=demo");
        try (JMXConnector c = JMXConnectorFactory.connect(url, Map.of(JMXConnector.CREDENTIALS,
                new String[] { "viewer", viewerPassword }))) {
            MBeanServerConnection m = c.getMBeanServerConnection();
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (!m.isRegistered(demo)) {
                assertTrue(demo + " never appeared", System.nanoTime() < deadline);
                Thread.sleep(100);
            }
            assertEquals("active", m.getAttribute(demo, "State"));
            assertTrue((Long) m.getAttribute(demo, "Requests") > 0);
            for (String op : List.of("remove", "restart")) {
                try {
                    m.invoke(demo, op, null, null);
                    fail("a viewer invoked " + op + " over JMX");
                } catch (SecurityException expected) {
                    assertTrue(expected.getMessage(), expected.getMessage().contains("Insufficient roles"));
                }
            }
            try {
                m.invoke(new ObjectName("org.blockfuse:type=exports"), "add", new Object[] { "v", "/x", "/y", "", false },
                        new String[] { "java.lang.String", "java.lang.String", "java.lang.String", "java.lang.String", "boolean" });
                fail("a viewer added an export over JMX");
            } catch (SecurityException expected) {
                // refused before anything is looked at
            }
        }
        assertTrue("the demo export is still there", Distribution.mounted(dist.demoMount()));
        try (JMXConnector c = JMXConnectorFactory.connect(url, Map.of(JMXConnector.CREDENTIALS,
                new String[] { "admin", password }))) {
            MBeanServerConnection m = c.getMBeanServerConnection();
            m.invoke(demo, "restart", null, null);
            assertEquals("active", m.getAttribute(demo, "State"));
        }
        assertTrue("restarted over JMX, mounted again", Distribution.mounted(dist.demoMount()));

        // Karaf's own commands need admin unless an ACL says otherwise: a viewer cannot read root's files
        Distribution.Result cat = dist.clientAs("viewer", viewerPassword, "shell:cat " + dist.usersFile());
        assertNotEquals(cat.output(), 0, cat.exit());
        assertFalse("a viewer read the admin password", cat.output().contains(password));

        // and admin, logged in by bin/client as root without -u/-p, still may do all of it
        String shown = dist.client("shell:cat " + dist.usersFile());
        assertTrue(shown, shown.contains(password));
        dist.client("blockfuse:export-add v " + image + " " + mount);
        assertTrue(Distribution.mounted(mount));
        dist.client("blockfuse:export-remove v");
        assertFalse(Distribution.mounted(mount));
    }
}
