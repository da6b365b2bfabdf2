package org.blockfuse.raw;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A loop device over a file, attached with {@code losetup -f --show} for one test and detached by
 * {@link #close()}. Needs root and losetup.
 */
final class LoopDevice implements AutoCloseable {
    private final Path device;

    private LoopDevice(Path device) {
        this.device = device;
    }

    static LoopDevice attach(Path backingFile) throws IOException {
        Host.requireRoot("a loop device");
        Host.require(Host.onPath("losetup"), "losetup is not installed");
        Host.require(Files.exists(Path.of("/dev/loop-control")), "this machine has no /dev/loop-control");
        String dev = Host.run("losetup", "-f", "--show", backingFile.toString());
        if (!dev.startsWith("/dev/loop")) {
            throw new IOException("losetup answered '" + dev + "', not a loop device");
        }
        return new LoopDevice(Path.of(dev));
    }

    Path path() {
        return device;
    }

    @Override
    public void close() throws IOException {
        Host.run("losetup", "-d", device.toString());
    }
}
