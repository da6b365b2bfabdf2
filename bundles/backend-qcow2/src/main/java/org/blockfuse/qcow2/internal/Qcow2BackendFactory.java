package org.blockfuse.qcow2.internal;

import java.io.IOException;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackendFactory;
import org.blockfuse.api.ImageException;
import org.osgi.service.component.annotations.Component;

/** Opens qcow2 images (v2 and v3, with backing chains) for read-only export. */
@Component(service = BlockBackendFactory.class, property = BlockBackendFactory.FORMAT + "=qcow2")
public final class Qcow2BackendFactory implements BlockBackendFactory {

    static final String FORMAT = "qcow2";

    @Override
    public String format() {
        return FORMAT;
    }

    @Override
    public boolean supportsWrite() {
        return false;
    }

    @Override
    public BlockBackend open(BackendRequest request) throws IOException {
        if (request.writable()) {
            throw new ImageException("qcow2 images are exported read-only; drop --writable");
        }
        return Qcow2Backend.open(request.imagePath(), OpenOptions.parse(request.options()));
    }

    @Override
    public java.util.List<org.blockfuse.api.OptionSpec> options() {
        return OpenOptions.SPECS;
    }
}
