package org.blockfuse.nbd;

import java.io.IOException;
import java.util.List;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.BlockBackendFactory;
import org.blockfuse.api.ImageException;
import org.blockfuse.api.OptionSpec;
import org.blockfuse.nbd.internal.NbdBackend;
import org.blockfuse.nbd.internal.NbdOptions;
import org.blockfuse.nbd.internal.NbdUri;
import org.osgi.service.component.annotations.Component;

/**
 * Exports disks served over NBD (qemu-nbd, qemu-storage-daemon, nbdkit, storage gateways). The
 * image is a URI: {@code nbd://HOST[:PORT]/NAME} or {@code nbd+unix:///NAME?socket=PATH}.
 * Read-only servers make read-only exports; the size is the server's and fixed.
 */
@Component(service = BlockBackendFactory.class, property = BlockBackendFactory.FORMAT + "=" + NbdBackendFactory.FORMAT_NAME)
public final class NbdBackendFactory implements BlockBackendFactory {
    public static final String FORMAT_NAME = "nbd";

    @Override
    public String format() {
        return FORMAT_NAME;
    }

    @Override
    public boolean supportsWrite() {
        return true;
    }

    @Override
    public List<OptionSpec> options() {
        return NbdOptions.SPECS;
    }

    @Override
    public boolean imageIsPath() {
        return false;
    }

    @Override
    public void checkLocation(String image) throws ImageException {
        NbdUri.parse(image);
    }

    @Override
    public BlockBackend open(BackendRequest request) throws IOException {
        NbdUri uri = NbdUri.parse(request.image());
        return NbdBackend.open(uri, request.writable(), NbdOptions.parse(request.options()));
    }
}
