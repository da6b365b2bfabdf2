package org.blockfuse.qcow2;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * What the qcow2 tests need from the machine. A missing capability fails the test (strict, the default and
 * what CI runs) unless the operator opts out with {@code -Dblockfuse.tests.lenient=true}, which skips it
 * with the cause instead. Same rule as backend-raw's {@code Host.require}.
 */
public final class Capability {

    /** The opt-out switch; surefire passes it through from the root pom. */
    public static final String LENIENT = "blockfuse.tests.lenient";

    private Capability() {
    }

    /** Fails (strict) or skips (lenient) with cause when the capability is not available. */
    public static void require(boolean available, String cause) {
        if (Boolean.getBoolean(LENIENT)) {
            assumeTrue(available, cause);
        } else if (!available) {
            throw new AssertionError("missing capability: " + cause + " (run with -D" + LENIENT + "=true to skip)");
        }
    }

    /** The named executables must be on PATH (or in /usr/bin). */
    public static void requireTools(String... tools) {
        String[] missing = Arrays.stream(tools).filter(t -> !onPath(t)).toArray(String[]::new);
        require(missing.length == 0, String.join(" and ", missing) + (missing.length == 1 ? " is" : " are")
                + " not installed (Debian: apt-get install qemu-utils)");
    }

    /** qemu-img and qemu-io, which make the test images and give the reference content. */
    public static void requireQemu() {
        requireTools("qemu-img", "qemu-io");
    }

    public static boolean onPath(String tool) {
        if (Files.isExecutable(Path.of("/usr/bin", tool))) {
            return true;
        }
        String path = System.getenv("PATH");
        return path != null && Arrays.stream(path.split(":")).anyMatch(d -> Files.isExecutable(Path.of(d, tool)));
    }
}
