package org.blockfuse.export.internal;

import java.util.ArrayList;
import java.util.List;

import org.blockfuse.api.ExportService;
import org.blockfuse.api.OptionSpec;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.metatype.AttributeDefinition;
import org.osgi.service.metatype.MetaTypeProvider;
import org.osgi.service.metatype.ObjectClassDefinition;

/**
 * Describes the keys of an export configuration for {@code config:meta org.blockfuse.export}:
 * the spec's own keys, then every option of the export, of each installed backend factory and of
 * each transport, as their owners declare them (so a new backend's keys appear when it is installed).
 */
@Component(service = MetaTypeProvider.class, property = {
        MetaTypeProvider.METATYPE_FACTORY_PID + "=" + ExportService.FACTORY_PID })
public final class ExportMetaType implements MetaTypeProvider {
    private static final List<OptionSpec> SPEC = List.of(
            OptionSpec.string("name", "", "Export name; defaults to the NAME in the file name org.blockfuse.export-NAME.cfg."),
            OptionSpec.string("image", "", "Path of the disk image (file or block device), or for format nbd the "
                    + "server's URI (nbd://HOST[:PORT]/NAME, nbd+unix:///NAME?socket=PATH); required."),
            OptionSpec.string("format", "raw", "Image format: raw (read-write), qcow2 (read-only), nbd (a disk on an NBD server), "
                    + "or any installed backend's."),
            OptionSpec.string("mountpoint", "", "Regular file to mount the image on; created if missing and removed again. "
                    + "May be the image itself; required."),
            OptionSpec.bool("writable", false, "Allow writes, truncate and fallocate (raw only)."),
            OptionSpec.bool("growable", false, "Writes and fallocate past the end grow the image (needs writable)."),
            OptionSpec.choice("allow-other", "auto", "Let users other than the owner open the file: on, off, or auto "
                    + "(on when running as root); the mode bits (0600/0400) still decide.", "auto", "on", "off"),
            OptionSpec.string("transport", "auto", "FUSE transport: auto (best available), legacy or io_uring."));

    @Reference
    private ExportService service;

    @Override
    public String[] getLocales() {
        return null;
    }

    @Override
    public ObjectClassDefinition getObjectClassDefinition(String id, String locale) {
        if (!ExportService.FACTORY_PID.equals(id)) {
            return null;
        }
        ExportManager manager = (ExportManager) service;
        List<AttributeDefinition> required = new ArrayList<>();
        List<AttributeDefinition> optional = new ArrayList<>();
        for (OptionSpec o : SPEC) {
            (o.key().equals("image") || o.key().equals("mountpoint") ? required : optional).add(new Attribute(o));
        }
        for (OptionSpec o : manager.options.all(manager.installedFactories())) {
            optional.add(new Attribute(o));
        }
        return new ObjectClassDefinition() {
            @Override
            public String getName() {
                return "blockfuse export";
            }

            @Override
            public String getID() {
                return ExportService.FACTORY_PID;
            }

            @Override
            public String getDescription() {
                return "One disk image exported as one regular file through FUSE.";
            }

            @Override
            public AttributeDefinition[] getAttributeDefinitions(int filter) {
                List<AttributeDefinition> l = filter == REQUIRED ? required : filter == OPTIONAL ? optional : both();
                return l.toArray(new AttributeDefinition[0]);
            }

            private List<AttributeDefinition> both() {
                List<AttributeDefinition> all = new ArrayList<>(required);
                all.addAll(optional);
                return all;
            }

            @Override
            public java.io.InputStream getIcon(int size) {
                return null;
            }
        };
    }

    /** One key, from its owner's declaration. */
    private record Attribute(OptionSpec spec) implements AttributeDefinition {
        @Override
        public String getName() {
            return spec.key();
        }

        @Override
        public String getID() {
            return spec.key();
        }

        @Override
        public String getDescription() {
            return spec.description();
        }

        @Override
        public int getCardinality() {
            return 0;
        }

        @Override
        public int getType() {
            switch (spec.type()) {
                case INTEGER:
                    return LONG;
                case BOOLEAN:
                    return BOOLEAN;
                default:
                    return STRING;
            }
        }

        @Override
        public String[] getOptionValues() {
            return spec.choices().isEmpty() ? null : spec.choices().toArray(new String[0]);
        }

        @Override
        public String[] getOptionLabels() {
            return getOptionValues();
        }

        @Override
        public String validate(String value) {
            String problem = spec.problem(value);
            return problem == null ? "" : problem;
        }

        @Override
        public String[] getDefaultValue() {
            return spec.defaultValue().isEmpty() ? null : new String[] {spec.defaultValue()};
        }
    }
}
