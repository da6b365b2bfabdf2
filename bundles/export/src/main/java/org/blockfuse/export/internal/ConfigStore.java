package org.blockfuse.export.internal;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Dictionary;
import java.util.Enumeration;
import java.util.Map;
import java.util.TreeMap;

import org.blockfuse.api.ExportException;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.ExportSpec;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Persists export configurations. Under Karaf the shell writes exactly the file an operator would
 * drop in etc/ (org.blockfuse.export-NAME.cfg) and Karaf's file watcher turns it into the
 * configuration, so both paths behave the same; elsewhere it goes straight to ConfigAdmin.
 */
final class ConfigStore {
    private static final Logger LOG = LoggerFactory.getLogger(ConfigStore.class);

    /** What was written: the file (or null) and the configuration (or null, when the watcher makes it). */
    record Stored(String file, Configuration configuration) {
    }

    private final ConfigurationAdmin configAdmin;
    private final Path etc;

    ConfigStore(ConfigurationAdmin configAdmin) {
        this.configAdmin = configAdmin;
        String dir = System.getProperty("karaf.etc");
        this.etc = dir != null && Files.isDirectory(Path.of(dir)) ? Path.of(dir) : null;
    }

    Stored create(ExportSpec spec) throws ExportException {
        try {
            if (etc != null) {
                Path file = etc.resolve(ExportService.FACTORY_PID + "-" + spec.name() + ".cfg");
                Path tmp = etc.resolve("." + file.getFileName() + ".tmp");
                Files.writeString(tmp, render(spec), StandardCharsets.UTF_8);
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                return new Stored(file.toUri().toString(), null);
            }
            Configuration c = configAdmin.getFactoryConfiguration(ExportService.FACTORY_PID, spec.name(), "?");
            c.update(ExportSpecs.toProperties(spec, null));
            return new Stored(null, c);
        } catch (IOException e) {
            throw new ExportException("cannot store the configuration of " + spec.name() + ": " + e.getMessage(), e);
        }
    }

    /** Removes the file (the watcher then deletes the configuration) and the configuration itself. */
    void delete(String file, Configuration configuration) {
        if (file != null) {
            try {
                Files.deleteIfExists(file.startsWith("file:") ? Path.of(URI.create(file)) : Path.of(file));
            } catch (IOException | IllegalArgumentException e) {
                LOG.warn("could not delete {}: {}", file, e.toString());
            }
        }
        if (configuration != null) {
            try {
                configuration.delete();
            } catch (IOException | IllegalStateException e) {
                LOG.debug("configuration {} already gone: {}", configuration, e.toString());
            }
        }
    }

    private static String render(ExportSpec spec) {
        Dictionary<String, Object> d = ExportSpecs.toProperties(spec, null);
        Map<String, String> sorted = new TreeMap<>();
        for (Enumeration<String> k = d.keys(); k.hasMoreElements();) {
            String key = k.nextElement();
            sorted.put(key, String.valueOf(d.get(key)));
        }
        StringBuilder b = new StringBuilder("# blockfuse export ").append(spec.name()).append(", written by blockfuse:export-add\n");
        sorted.forEach((key, value) -> b.append(key).append(" = ").append(escape(value)).append('\n'));
        return b.toString();
    }

    /** Felix .cfg values are Java-properties-like: escape backslashes and a leading space. */
    private static String escape(String v) {
        return v.replace("\\", "\\\\");
    }
}
