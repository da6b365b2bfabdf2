package org.blockfuse.export.internal;

import java.nio.file.Path;
import java.util.Dictionary;
import java.util.Enumeration;
import java.util.Hashtable;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import org.blockfuse.api.ExportException;
import org.blockfuse.api.ExportService;
import org.blockfuse.api.ExportSpec;

/** Converts between configuration properties and {@link ExportSpec}. */
final class ExportSpecs {
    static final String NAME = "name";
    static final String IMAGE = "image";
    static final String FORMAT = "format";
    static final String MOUNTPOINT = "mountpoint";
    static final String WRITABLE = "writable";
    static final String GROWABLE = "growable";
    static final String ALLOW_OTHER = "allow-other";
    static final String TRANSPORT = "transport";
    static final String FILEINSTALL_FILENAME = "felix.fileinstall.filename";
    /** The keys of the spec itself; every other key is an option, owned by the export, a backend or a transport. */
    static final Set<String> SPEC_KEYS = Set.of(NAME, IMAGE, FORMAT, MOUNTPOINT, WRITABLE, GROWABLE,
            ALLOW_OTHER, TRANSPORT);

    private ExportSpecs() {
    }

    /** The export name of a configuration: its name key, else the NAME of pid "factory~NAME" or of the file name. */
    static String nameOf(String pid, Map<String, Object> props) {
        Object n = props.get(NAME);
        if (n != null && !n.toString().isBlank()) {
            return n.toString().trim();
        }
        int tilde = pid.indexOf('~');
        if (tilde >= 0) {
            return pid.substring(tilde + 1);
        }
        Object file = props.get(FILEINSTALL_FILENAME);
        if (file != null) {
            String f = file.toString();
            String base = f.substring(f.lastIndexOf('/') + 1);
            String prefix = ExportService.FACTORY_PID + "-";
            if (base.startsWith(prefix) && base.endsWith(".cfg")) {
                return base.substring(prefix.length(), base.length() - 4);
            }
        }
        return pid;
    }

    static ExportSpec fromProperties(String name, Map<String, Object> props) throws ExportException {
        String image = string(props, IMAGE, null);
        String mountpoint = string(props, MOUNTPOINT, null);
        if (image == null) {
            throw new ExportException("export " + name + ": the configuration has no 'image'");
        }
        if (mountpoint == null) {
            throw new ExportException("export " + name + ": the configuration has no 'mountpoint'");
        }
        // every other key is an option; whether anyone owns it is checked when the export starts
        // (OptionCatalog), once its format's factory and the transports are known
        Map<String, String> options = new java.util.TreeMap<>();
        for (String key : props.keySet()) {
            // dotted keys belong to the framework (service.pid, component.name, felix.fileinstall.filename)
            String v = string(props, key, null);
            if (!key.contains(".") && !SPEC_KEYS.contains(key) && v != null && !v.isBlank()) {
                options.put(key, v);
            }
        }
        return new ExportSpec(name, image, string(props, FORMAT, "raw"), Path.of(mountpoint),
                bool(props, WRITABLE, name), bool(props, GROWABLE, name), string(props, ALLOW_OTHER, "auto"),
                string(props, TRANSPORT, "auto"), options);
    }

    static Dictionary<String, Object> toProperties(ExportSpec spec, String fileName) {
        Hashtable<String, Object> d = new Hashtable<>();
        d.put(NAME, spec.name());
        d.put(IMAGE, spec.image());
        d.put(FORMAT, spec.format());
        d.put(MOUNTPOINT, spec.mountpoint().toString());
        d.put(WRITABLE, Boolean.toString(spec.writable()));
        d.put(GROWABLE, Boolean.toString(spec.growable()));
        d.put(ALLOW_OTHER, spec.allowOther());
        d.put(TRANSPORT, spec.transport());
        spec.options().forEach(d::put);
        if (fileName != null) {
            d.put(FILEINSTALL_FILENAME, fileName);
        }
        return d;
    }

    static Map<String, Object> toMap(Dictionary<String, ?> d) {
        Map<String, Object> m = new LinkedHashMap<>();
        if (d != null) {
            for (Enumeration<String> e = d.keys(); e.hasMoreElements();) {
                String k = e.nextElement();
                m.put(k, d.get(k));
            }
        }
        return m;
    }

    private static String string(Map<String, Object> props, String key, String fallback) {
        Object v = props.get(key);
        return v == null ? fallback : v.toString().trim();
    }

    private static boolean bool(Map<String, Object> props, String key, String name) throws ExportException {
        Object v = props.get(key);
        if (v == null) {
            return false;
        }
        String s = v.toString().trim().toLowerCase();
        if (s.equals("true") || s.equals("false")) {
            return Boolean.parseBoolean(s);
        }
        throw new ExportException("export " + name + ": '" + key + "' must be true or false, not '" + v + "'");
    }
}
